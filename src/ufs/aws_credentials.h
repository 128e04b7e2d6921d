// AWS credentials the way cloud workloads get them, and kept fresh while a mount runs.
//
// The default chain, in the SDKs' order; the first provider that yields credentials is the
// one the mount keeps (and refreshes from):
//   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN];
//   2. web identity (EKS IRSA): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, exchanged with
//      STS AssumeRoleWithWebIdentity (unsigned); the token file is re-read on every call,
//      since the kubelet rotates it;
//   3. the profile (AWS_PROFILE, default "default") in the shared credentials and config
//      files: static keys, credential_process, or role_arn with source_profile (STS
//      AssumeRole signed with the source profile's credentials) or web_identity_token_file;
//   4. container credentials (ECS, EKS Pod Identity): AWS_CONTAINER_CREDENTIALS_FULL_URI
//      (loopback or the documented link-local addresses only) or ..._RELATIVE_URI, with
//      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read) or ..._TOKEN;
//   5. IMDSv2 (EC2 instance profile): a session token PUT, then the role's credentials;
//      IMDSv1 only if asked for. AWS_EC2_METADATA_DISABLED=true skips it.
// Endpoints: AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL, AWS_STS_REGIONAL_ENDPOINTS (legacy:
// the global endpoint), AWS_EC2_METADATA_SERVICE_ENDPOINT.
//
// Secrets (keys, session and web-identity tokens, authorization tokens) never reach a log
// line, an error message or a metric: errors name the provider and what failed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "ufs/http_client.h"

namespace tierfs {

struct AwsCredentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  int64_t expires_at = 0;  // unix seconds; 0: does not expire
};

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // "environment", "web-identity", "profile NAME", "credential-process", "assume-role",
  // "container", "imds": for messages and metrics.
  virtual std::string Name() const = 0;
  virtual Result<AwsCredentials> Fetch() = 0;
};

struct CredentialChainOptions {
  AwsCredentials given;          // keys of this source only (a Fluid secret): no chain
  std::string credentials_file;  // --s3-credentials-file: that file's profile, nothing else
  std::string region;            // for STS's regional endpoint
  bool imds_v1 = false;          // allow IMDSv1 when the token PUT is refused
  HttpOptions http;              // TLS and timeouts for STS and the credential endpoints
};

// The first provider of the chain that yields credentials, and those credentials. The
// error names every provider tried and why each failed, in one line.
Result<std::unique_ptr<CredentialProvider>> ResolveCredentialChain(
    const CredentialChainOptions& options, AwsCredentials* first);

// Holds a provider's current credentials and renews them ahead of their expiry, in the
// background, so requests rarely wait: renewal starts when a quarter of the lifetime (at
// most 5 minutes) is left, one fetch at a time however many requests are in flight. If it
// fails, the old credentials serve until they expire (failures logged, rate-limited) and
// renewal is retried with backoff. Thread-safe.
class CredentialCache {
 public:
  // `clock` (the system's by default) must outlive the cache.
  CredentialCache(std::unique_ptr<CredentialProvider> provider, AwsCredentials first,
                  Clock& clock = Clock::Real());
  ~CredentialCache();
  CredentialCache(const CredentialCache&) = delete;
  CredentialCache& operator=(const CredentialCache&) = delete;

  // Credentials valid now, renewing first if they have expired (EACCES if none can be had).
  Result<AwsCredentials> Get();
  // A request signed with `access_key` was refused as expired or invalid: renew now,
  // unless another request already did (then the caller just retries).
  void Refused(const std::string& access_key);
  const std::string& provider_name() const { return name_; }

 private:
  Status Renew();  // with renew_mu_ held
  void Loop();

  std::unique_ptr<CredentialProvider> provider_;
  Clock& clock_;
  const std::string name_;
  Mutex renew_mu_;  // one fetch at a time
  mutable Mutex mu_;
  AwsCredentials current_ GUARDED_BY(mu_);
  int64_t fetched_at_ GUARDED_BY(mu_) = 0;
  int64_t failures_in_a_row_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
  std::condition_variable cv_;
  int collector_ GUARDED_BY(mu_) = -1;
  std::thread thread_;
};

// The chain's region: `given`, else $AWS_REGION / $AWS_DEFAULT_REGION, else the profile's
// region in the config file, else us-east-1.
std::string ResolveAwsRegion(const std::string& given);
// Reads `key` from section `section` of an INI file (the AWS credentials/config format).
std::string IniValue(const std::string& path, const std::string& section, const std::string& key);
// An ISO 8601 UTC time ("2026-11-29T15:00:00Z") as unix nanoseconds.
std::optional<int64_t> ParseIso8601(const std::string& s);

// Whether an S3 error answer says the credentials expired or are not valid (any more).
bool IsExpiredCredentialsAnswer(long status, const std::string& body);

}  // namespace tierfs
