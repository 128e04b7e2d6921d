#include "ufs/aws_credentials.h"

#include <arpa/inet.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <sstream>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/names.h"

namespace tierfs {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string HomeFile(const char* rel) {
  std::string home = Env("HOME");
  return home.empty() ? std::string() : home + "/" + rel;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string CredentialsFile() {
  std::string path = Env("AWS_SHARED_CREDENTIALS_FILE");
  return path.empty() ? HomeFile(".aws/credentials") : path;
}

std::string ConfigFile() {
  std::string path = Env("AWS_CONFIG_FILE");
  return path.empty() ? HomeFile(".aws/config") : path;
}

std::string ProfileName() {
  std::string profile = Env("AWS_PROFILE");
  return profile.empty() ? "default" : profile;
}

// A profile's key: the credentials file's [NAME], else the config file's [profile NAME]
// ([default] for the default profile).
std::string ProfileValue(const std::string& credentials_file, const std::string& profile,
                         const std::string& key) {
  if (std::string v = IniValue(credentials_file, profile, key); !v.empty()) return v;
  return IniValue(ConfigFile(), profile == "default" ? "default" : "profile " + profile, key);
}

// The credentials in an STS answer (AssumeRole*Result/Credentials).
Result<AwsCredentials> ParseStsCredentials(const std::string& xml, const std::string& what) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return Status::Io(what + ": answer is not XML");
  pugi::xml_node c = doc.select_node("//Credentials").node();
  AwsCredentials out;
  out.access_key = c.child_value("AccessKeyId");
  out.secret_key = c.child_value("SecretAccessKey");
  out.session_token = c.child_value("SessionToken");
  auto expires = ParseIso8601(c.child_value("Expiration"));
  if (out.access_key.empty() || out.secret_key.empty() || !expires) {
    return Status::Io(what + ": answer holds no credentials");
  }
  out.expires_at = *expires / 1000000000;
  return out;
}

// The JSON of container credentials, IMDS and credential_process (Token or SessionToken).
Result<AwsCredentials> ParseJsonCredentials(const std::string& text, const std::string& what) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Io(what + ": answer is not JSON");
  AwsCredentials out;
  out.access_key = j.value("AccessKeyId", "");
  out.secret_key = j.value("SecretAccessKey", "");
  out.session_token = j.value("Token", j.value("SessionToken", ""));
  if (out.access_key.empty() || out.secret_key.empty()) {
    return Status::Io(what + ": answer holds no credentials");
  }
  if (j.contains("Expiration") && j["Expiration"].is_string()) {
    auto expires = ParseIso8601(j["Expiration"].get<std::string>());
    if (!expires) return Status::Io(what + ": bad Expiration");
    out.expires_at = *expires / 1000000000;
  }
  return out;
}

std::string StsEndpoint(const std::string& region) {
  if (std::string e = Env("AWS_ENDPOINT_URL_STS"); !e.empty()) return e;
  if (std::string e = Env("AWS_ENDPOINT_URL"); !e.empty()) return e;
  if (Env("AWS_STS_REGIONAL_ENDPOINTS") == "legacy") return "https://sts.amazonaws.com";
  return "https://sts." + region + ".amazonaws.com";
}

std::string SessionName() {
  std::string name = Env("AWS_ROLE_SESSION_NAME");
  return name.empty() ? "tierfs-" + std::to_string(::getpid()) : name;
}

HttpOptions EndpointOptions(HttpOptions http) {
  http.proxy_list.clear();  // credentials never go through the cluster caches
  http.aws_sigv4.clear();
  http.aws_credentials.clear();
  http.wait_while_unreachable = false;
  http.max_attempts = std::min(http.max_attempts, 3);
  return http;
}

// What a failed answer says, without its body (which may echo a token back).
Status AnswerError(const Result<HttpResponse>& resp, const std::string& what) {
  if (!resp.ok()) return Status(resp.status().error(), what + ": " + resp.status().message());
  return Status(resp->status == 401 || resp->status == 403 ? EACCES : EIO,
                what + ": HTTP " + std::to_string(resp->status));
}

class StaticProvider : public CredentialProvider {
 public:
  StaticProvider(std::string name, AwsCredentials c) : name_(std::move(name)), c_(std::move(c)) {}
  std::string Name() const override { return name_; }
  Result<AwsCredentials> Fetch() override { return c_; }

 private:
  std::string name_;
  AwsCredentials c_;
};

class WebIdentityProvider : public CredentialProvider {
 public:
  WebIdentityProvider(std::string role_arn, std::string token_file, const std::string& region,
                      const HttpOptions& http)
      : role_arn_(std::move(role_arn)),
        token_file_(std::move(token_file)),
        endpoint_(StsEndpoint(region)),
        http_(EndpointOptions(http)) {}
  std::string Name() const override { return "web-identity"; }
  Result<AwsCredentials> Fetch() override {
    std::string token = TrimBlanks(ReadWholeFile(token_file_));  // rotated by the kubelet
    if (token.empty()) {
      return Status(EACCES, "web identity: cannot read the token file '" + token_file_ + "'");
    }
    HttpRequest req;
    req.url = endpoint_;
    req.headers = {"Content-Type: application/x-www-form-urlencoded"};
    req.post_body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
                    PercentEncode(role_arn_, false) +
                    "&RoleSessionName=" + PercentEncode(SessionName(), false) +
                    "&WebIdentityToken=" + PercentEncode(token, false);
    auto resp = http_.Send(req);
    if (!resp.ok() || resp->status != 200) return AnswerError(resp, "web identity (STS)");
    return ParseStsCredentials(resp->body, "web identity (STS)");
  }

 private:
  const std::string role_arn_, token_file_, endpoint_;
  HttpClient http_;
};

class AssumeRoleProvider : public CredentialProvider {
 public:
  AssumeRoleProvider(std::string role_arn, std::unique_ptr<CredentialProvider> source,
                     std::string region, const HttpOptions& http)
      : role_arn_(std::move(role_arn)),
        source_(std::move(source)),
        region_(std::move(region)),
        endpoint_(StsEndpoint(region_)),
        http_([&] {
          HttpOptions o = EndpointOptions(http);
          o.aws_sigv4 = "aws:amz:" + region_ + ":sts";
          return o;
        }()) {}
  std::string Name() const override { return "assume-role"; }
  Result<AwsCredentials> Fetch() override {
    auto src = source_->Fetch();
    if (!src.ok()) {
      return Status(src.status().error(), "assume-role: source profile: " + src.status().message());
    }
    HttpRequest req;
    req.url = endpoint_;
    req.headers = {"Content-Type: application/x-www-form-urlencoded"};
    if (!src->session_token.empty())
      req.headers.push_back("x-amz-security-token: " + src->session_token);
    req.aws_credentials = src->access_key + ":" + src->secret_key;
    req.post_body =
        "Action=AssumeRole&Version=2011-06-15&RoleArn=" + PercentEncode(role_arn_, false) +
        "&RoleSessionName=" + PercentEncode(SessionName(), false);
    auto resp = http_.Send(req);
    if (!resp.ok() || resp->status != 200) return AnswerError(resp, "assume-role (STS)");
    return ParseStsCredentials(resp->body, "assume-role (STS)");
  }

 private:
  const std::string role_arn_;
  std::unique_ptr<CredentialProvider> source_;
  const std::string region_, endpoint_;
  HttpClient http_;
};

class ProcessProvider : public CredentialProvider {
 public:
  explicit ProcessProvider(std::string command) : command_(std::move(command)) {}
  std::string Name() const override { return "credential-process"; }
  Result<AwsCredentials> Fetch() override {
    FILE* p = ::popen(command_.c_str(), "r");
    if (p == nullptr) return Status::FromErrno(errno, "credential_process: cannot run it");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0 && out.size() < (1 << 20))
      out.append(buf, n);
    const int rc = ::pclose(p);
    if (rc != 0) {
      return Status(EACCES, "credential_process: exited with status " +
                                std::to_string(WIFEXITED(rc) ? WEXITSTATUS(rc) : rc));
    }
    return ParseJsonCredentials(out, "credential_process");
  }

 private:
  const std::string command_;
};

// Whether a credentials URI may be asked (the SDKs' rule for full URIs): loopback, or the
// ECS / EKS Pod Identity link-local addresses.
bool AllowedContainerHost(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  std::string host = url.substr(scheme + 3);
  host = host.substr(0, host.find('/'));
  if (!host.empty() && host[0] == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  if (host == "localhost" || host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" ||
      host == "fd00:ec2::23") {
    return true;
  }
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

class ContainerProvider : public CredentialProvider {
 public:
  ContainerProvider(std::string url, const HttpOptions& http)
      : url_(std::move(url)), http_(EndpointOptions(http)) {}
  std::string Name() const override { return "container"; }
  Result<AwsCredentials> Fetch() override {
    HttpRequest req;
    req.url = url_;
    std::string token = Env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (std::string file = Env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); !file.empty()) {
      token = TrimBlanks(ReadWholeFile(file));  // re-read: it is rotated
      if (token.empty())
        return Status(EACCES, "container: cannot read the token file '" + file + "'");
    }
    if (!token.empty()) req.headers.push_back("Authorization: " + token);
    auto resp = http_.Send(req);
    if (!resp.ok() || resp->status != 200) return AnswerError(resp, "container credentials");
    return ParseJsonCredentials(resp->body, "container credentials");
  }

 private:
  const std::string url_;
  HttpClient http_;
};

class ImdsProvider : public CredentialProvider {
 public:
  ImdsProvider(bool v1, const HttpOptions& http)
      : endpoint_(Env("AWS_EC2_METADATA_SERVICE_ENDPOINT")), v1_(v1), http_([&] {
          HttpOptions o = EndpointOptions(http);
          o.connect_timeout_ms = std::min<long>(o.connect_timeout_ms, 1000);
          o.request_timeout_ms = std::min<long>(o.request_timeout_ms, 5000);
          return o;
        }()) {
    if (endpoint_.empty()) endpoint_ = "http://169.254.169.254";
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  }
  std::string Name() const override { return "imds"; }
  Result<AwsCredentials> Fetch() override {
    HttpRequest put;
    put.url = endpoint_ + "/latest/api/token";
    put.method = "PUT";
    put.headers = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
    auto token = http_.Send(put);
    std::vector<std::string> auth;
    if (token.ok() && token->status == 200) {
      auth.push_back("X-aws-ec2-metadata-token: " + TrimBlanks(token->body));
    } else if (!v1_) {
      return AnswerError(token, "imds (IMDSv2 token)");
    }
    HttpRequest role_req;
    role_req.url = endpoint_ + "/latest/meta-data/iam/security-credentials/";
    role_req.headers = auth;
    auto role = http_.Send(role_req);
    if (!role.ok() || role->status != 200) return AnswerError(role, "imds (instance role)");
    std::string name = TrimBlanks(role->body.substr(0, role->body.find('\n')));
    if (name.empty() || !IsSafeName(name)) return Status(EACCES, "imds: no instance role");
    HttpRequest creds_req;
    creds_req.url = role_req.url + PercentEncode(name, false);
    creds_req.headers = auth;
    auto creds = http_.Send(creds_req);
    if (!creds.ok() || creds->status != 200) return AnswerError(creds, "imds (role credentials)");
    return ParseJsonCredentials(creds->body, "imds");
  }

 private:
  std::string endpoint_;
  const bool v1_;
  HttpClient http_;
};

// The provider a profile describes, or ENOENT if the profile says nothing about credentials.
Result<std::unique_ptr<CredentialProvider>> ProfileProvider(const std::string& file,
                                                            const std::string& profile,
                                                            const CredentialChainOptions& o,
                                                            int depth) {
  if (depth > 4) return Status::Invalid("profile '" + profile + "': source_profile loop");
  const std::string role_arn = ProfileValue(file, profile, "role_arn");
  if (!role_arn.empty()) {
    if (std::string token_file = ProfileValue(file, profile, "web_identity_token_file");
        !token_file.empty()) {
      return std::unique_ptr<CredentialProvider>(
          new WebIdentityProvider(role_arn, token_file, o.region, o.http));
    }
    const std::string source = ProfileValue(file, profile, "source_profile");
    if (source.empty()) {
      return Status::Invalid("profile '" + profile + "': role_arn without source_profile");
    }
    auto inner = ProfileProvider(file, source, o, depth + 1);
    if (!inner.ok()) return inner.status();
    return std::unique_ptr<CredentialProvider>(
        new AssumeRoleProvider(role_arn, std::move(*inner), o.region, o.http));
  }
  if (std::string command = ProfileValue(file, profile, "credential_process"); !command.empty()) {
    return std::unique_ptr<CredentialProvider>(new ProcessProvider(command));
  }
  AwsCredentials c;
  c.access_key = ProfileValue(file, profile, "aws_access_key_id");
  c.secret_key = ProfileValue(file, profile, "aws_secret_access_key");
  c.session_token = ProfileValue(file, profile, "aws_session_token");
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Status(ENOENT, "profile '" + profile + "': no credentials");
  }
  return std::unique_ptr<CredentialProvider>(new StaticProvider("profile " + profile, c));
}

}  // namespace

std::string IniValue(const std::string& path, const std::string& section, const std::string& key) {
  std::ifstream in(path);
  std::string line, current;
  while (std::getline(in, line)) {
    line = TrimBlanks(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      current = TrimBlanks(line.substr(1, line.size() - 2));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos || current != section) continue;
    if (TrimBlanks(line.substr(0, eq)) == key) return TrimBlanks(line.substr(eq + 1));
  }
  return {};
}

std::optional<int64_t> ParseIso8601(const std::string& s) {
  struct tm tm = {};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  const time_t t = timegm(&tm);
  // Dates a hostile answer makes up must not overflow nanoseconds (±292 years).
  if (t == static_cast<time_t>(-1) || t < -9000000000LL || t > 9000000000LL) return std::nullopt;
  return static_cast<int64_t>(t) * 1000000000;
}

std::string ResolveAwsRegion(const std::string& given) {
  if (!given.empty()) return given;
  for (const char* var : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (std::string v = Env(var); !v.empty()) return v;
  }
  const std::string profile = ProfileName();
  const std::string section = profile == "default" ? "default" : "profile " + profile;
  if (std::string r = IniValue(ConfigFile(), section, "region"); !r.empty()) return r;
  return "us-east-1";
}

Result<std::unique_ptr<CredentialProvider>> ResolveCredentialChain(const CredentialChainOptions& o,
                                                                   AwsCredentials* first) {
  std::vector<std::string> tried;
  auto attempt =
      [&](Result<std::unique_ptr<CredentialProvider>> p) -> std::unique_ptr<CredentialProvider> {
    if (!p.ok()) {
      tried.push_back(p.status().message());
      return nullptr;
    }
    auto c = (*p)->Fetch();
    if (!c.ok()) {
      tried.push_back(c.status().message());
      return nullptr;
    }
    *first = std::move(*c);
    return std::move(*p);
  };
  if (!o.given.access_key.empty()) {
    *first = o.given;
    return std::unique_ptr<CredentialProvider>(new StaticProvider("given", o.given));
  }
  if (!o.credentials_file.empty()) {
    if (!std::ifstream(o.credentials_file)) {
      return Status(ENOENT, "cannot read credentials file '" + o.credentials_file + "'");
    }
    if (auto p = attempt(ProfileProvider(o.credentials_file, ProfileName(), o, 0))) return p;
    return Status(EACCES, "no AWS credentials in '" + o.credentials_file + "': " + tried.back());
  }
  AwsCredentials env;
  env.access_key = Env("AWS_ACCESS_KEY_ID");
  env.secret_key = Env("AWS_SECRET_ACCESS_KEY");
  env.session_token = Env("AWS_SESSION_TOKEN");
  if (!env.access_key.empty() && !env.secret_key.empty()) {
    *first = env;
    return std::unique_ptr<CredentialProvider>(new StaticProvider("environment", env));
  }
  tried.push_back("environment: not set");
  if (std::string role = Env("AWS_ROLE_ARN"), file = Env("AWS_WEB_IDENTITY_TOKEN_FILE");
      !role.empty() && !file.empty()) {
    if (auto p = attempt(std::unique_ptr<CredentialProvider>(
            new WebIdentityProvider(role, file, o.region, o.http)))) {
      return p;
    }
  }
  if (auto p = attempt(ProfileProvider(CredentialsFile(), ProfileName(), o, 0))) return p;
  std::string container = Env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (std::string rel = Env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); !rel.empty()) {
    container = "http://169.254.170.2" + rel;
  } else if (!container.empty() && !AllowedContainerHost(container)) {
    return Status(EACCES,
                  "container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI must name loopback "
                  "or 169.254.170.2/169.254.170.23 (as the AWS SDKs require)");
  }
  if (!container.empty()) {
    if (auto p = attempt(
            std::unique_ptr<CredentialProvider>(new ContainerProvider(container, o.http)))) {
      return p;
    }
  }
  if (Env("AWS_EC2_METADATA_DISABLED") != "true") {
    if (auto p =
            attempt(std::unique_ptr<CredentialProvider>(new ImdsProvider(o.imds_v1, o.http)))) {
      return p;
    }
  }
  std::string why;
  for (const auto& t : tried) why += (why.empty() ? "" : "; ") + t;
  return Status(EACCES, "no AWS credentials (" + why +
                            "); or use --s3-credentials-file or --no-sign-request");
}

bool IsExpiredCredentialsAnswer(long status, const std::string& body) {
  if (status != 400 && status != 401 && status != 403) return false;
  for (const char* code : {"<Code>ExpiredToken</Code>", "<Code>InvalidToken</Code>",
                           "<Code>TokenRefreshRequired</Code>", "<Code>InvalidAccessKeyId</Code>",
                           "<Code>RequestExpired</Code>"}) {
    if (body.find(code) != std::string::npos) return true;
  }
  return false;
}

CredentialCache::CredentialCache(std::unique_ptr<CredentialProvider> provider, AwsCredentials first,
                                 Clock& clock)
    : provider_(std::move(provider)),
      clock_(clock),
      name_(provider_->Name()),
      current_(std::move(first)),
      fetched_at_(clock_.Now()) {
  collector_ = MetricsRegistry::Global().AddCollector([this](MetricsWriter& w) {
    MutexLock lock(mu_);
    if (current_.expires_at == 0) return;
    w.Gauge("tierfs_s3_credentials_expiry_seconds",
            "seconds until the S3 credentials in use expire (renewed ahead of it)",
            {{"provider", name_}}, static_cast<double>(current_.expires_at - clock_.Now()));
  });
  if (current_.expires_at != 0) thread_ = std::thread([this] { Loop(); });
}

CredentialCache::~CredentialCache() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  MetricsRegistry::Global().RemoveCollector(collector_);
}

Status CredentialCache::Renew() {
  auto fresh = provider_->Fetch();
  MetricsRegistry::Global()
      .GetCounter("tierfs_s3_credential_refreshes_total",
                  "renewals of temporary S3 credentials, by provider and outcome",
                  {{"provider", name_}, {"result", fresh.ok() ? "ok" : "error"}})
      .Add();
  MutexLock lock(mu_);
  if (!fresh.ok()) {
    ++failures_in_a_row_;
    return fresh.status();
  }
  if (failures_in_a_row_ > 0) TLOG_INFO("S3 credentials ({}) renewed again", name_);
  failures_in_a_row_ = 0;
  current_ = std::move(*fresh);
  fetched_at_ = clock_.Now();
  cv_.notify_all();
  return Status::Ok();
}

void CredentialCache::Loop() {
  SetThreadName("tierfs-creds");
  MutexLock lock(mu_);
  while (!stop_) {
    if (current_.expires_at == 0) break;  // renewed into static credentials
    const int64_t lifetime = std::max<int64_t>(1, current_.expires_at - fetched_at_);
    const int64_t ahead = std::clamp<int64_t>(lifetime / 4, 1, 300);
    int64_t wake = current_.expires_at - ahead;
    if (failures_in_a_row_ > 0) {
      wake = clock_.Now() +
             std::min<int64_t>(30, int64_t{1} << std::min<int64_t>(failures_in_a_row_ - 1, 5));
    }
    if (clock_.WaitUntil(lock.native(), cv_, wake, [&]() REQUIRES(mu_) { return stop_; })) break;
    if (clock_.Now() < wake) continue;  // renewed meanwhile (Refused): recompute
    lock.Unlock();
    Status s;
    {
      MutexLock renew(renew_mu_);
      s = Renew();
    }
    lock.Lock();
    if (!s.ok()) {
      static LogLimiter limiter{5, std::chrono::seconds(60)};
      const int64_t left = current_.expires_at - clock_.Now();
      TLOG_WARN_LIMITED(limiter, "renewing S3 credentials ({}) failed: {}; {}", name_, s.message(),
                        left > 0 ? "the current ones serve for " + std::to_string(left) + " s more"
                                 : std::string("reads fail until it works again"));
    }
  }
}

Result<AwsCredentials> CredentialCache::Get() {
  {
    MutexLock lock(mu_);
    if (current_.expires_at == 0 || clock_.Now() < current_.expires_at) return current_;
  }
  MutexLock renew(renew_mu_);  // one fetch; the others wait for it and use its result
  {
    MutexLock lock(mu_);
    if (clock_.Now() < current_.expires_at) return current_;
  }
  if (Status s = Renew(); !s.ok()) {
    return Status(EACCES,
                  "S3 credentials (" + name_ + ") expired and cannot be renewed: " + s.message());
  }
  MutexLock lock(mu_);
  return current_;
}

void CredentialCache::Refused(const std::string& access_key) {
  MutexLock renew(renew_mu_);
  {
    MutexLock lock(mu_);
    if (current_.access_key != access_key) return;  // renewed already
  }
  if (Status s = Renew(); !s.ok()) {
    static LogLimiter limiter{5, std::chrono::seconds(60)};
    TLOG_WARN_LIMITED(limiter, "S3 refused the credentials ({}) and renewing them failed: {}",
                      name_, s.message());
  }
}

}  // namespace tierfs
