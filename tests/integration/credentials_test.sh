#!/usr/bin/env bash
# S3 credentials from the default chain, renewed while mounted, against stand-ins on
# loopback (tools/servers/fake-aws): STS, container credentials, IMDSv2 and a strict S3
# that refuses a key after its expiry. Credentials live 4 s; each mount reads with its RAM
# and NVMe tiers off (every read goes to S3) for more than three lifetimes (web identity
# alone, with an outage; the four other providers at once).
source "$(dirname "$0")/lib.sh"
need_fuse

DATA=$WORK/data
"$TOOLS/gen-dataset" "$DATA" --files 24 --file-size 200000 --per-dir 12 > /dev/null
PORT=$(free_port)
CTOKEN=container-secret-$RANDOM$RANDOM
python3 "$SERVERS/fake-aws" --port "$PORT" --data "$DATA" --lifetime 4 --container-token "$CTOKEN" &
SERVER_PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/__stats"
EP=http://127.0.0.1:$PORT
S3OPTS=(--s3-endpoint "$EP" --s3-path-style --s3-region us-east-1)
stats() { curl -s "$EP/__stats" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# A clean environment per provider: no keys, no files, nothing but what the case sets.
mkdir -p "$WORK/home"
clean_env=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE
           HOME="$WORK/home" AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL_STS="$EP")
AWS_ACCESS_KEY_ID=AKSTATIC AWS_SECRET_ACCESS_KEY=static "$TIERFS" index build s3://data \
  --index "$WORK/idx" "${S3OPTS[@]}" > /dev/null || fail "index build with static keys"

# read_for SECONDS MNT: reads every file again and again (page cache dropped each round);
# prints the number of failed or wrong reads.
read_for() {
  local end=$((SECONDS + $1)) bad=0 f
  while [ $SECONDS -lt $end ]; do
    echo 3 > /proc/sys/vm/drop_caches
    while IFS= read -r f; do
      cmp -s "$DATA/$f" "$2/$f" || bad=$((bad + 1))
    done < <(cd "$DATA" && find . -type f | sort)
  done
  echo "$bad"
}

# mount_provider NAME ENV...: mounts with that environment (no RAM or disk tier: every
# read goes to S3 and needs credentials that are still valid).
mount_provider() {
  local name=$1; shift
  local mnt=$WORK/mnt-$name
  mkdir -p "$mnt"; MOUNTS+=("$mnt")
  "${clean_env[@]}" "$@" "$TIERFS" mount s3://data "$mnt" --index "$WORK/idx" --ram-size 0 \
    --cache-size 0 --cache-dir "$WORK/c-$name" --log-level debug -f "${S3OPTS[@]}" \
    > "$WORK/$name.log" 2>&1 &
  for _ in $(seq 50); do is_mounted "$mnt" && break; sleep 0.1; done
  is_mounted "$mnt" || { cat "$WORK/$name.log"; fail "$name: did not mount"; }
}
# check_provider NAME KIND BAD: no failed reads, 3+ keys its endpoint (KIND, fake-aws)
# issued were used in 13 s of 4 s credentials, never two of its requests in flight.
check_provider() {
  [ "$3" = 0 ] || { tail -5 "$WORK/$1.log"; fail "$1: $3 failed or wrong reads"; }
  KEYS=$(stats "['keys_used']" | tr -d "[]' " | tr , '\n' | grep -c "^ASIA$2" || true)
  [ "$KEYS" -ge 3 ] || fail "$1: only $KEYS keys used in 13 s of 4 s credentials"
  local inflight; inflight=$(stats "['max_inflight_by']['$2']")
  [ "$inflight" = 1 ] || fail "$1: $inflight credential requests in flight at once"
}

echo "web-identity-token-1" > "$WORK/token"
mount_provider web-identity AWS_ROLE_ARN=arn:aws:iam::1:role/r AWS_WEB_IDENTITY_TOKEN_FILE="$WORK/token"
check_provider web-identity WEB "$(read_for 13 "$WORK/mnt-web-identity")"
echo "web-identity-token-2" > "$WORK/token"
sleep 4
[ "$(stats "['tokens_seen'][-1]")" = web-identity-token-2 ] || fail "the rotated token file was not re-read"
pass "web identity: 13 s of reads on 4 s credentials, 0 failed, $KEYS keys; rotated token used on the next renewal"

# The provider down longer than a lifetime: reads go on until the credentials expire, fail
# cleanly, and work again once it is back.
curl -s "$EP/__down?seconds=12" > /dev/null
sleep 8  # the last credentials expired 4 s ago at the latest; retries end well before 12 s
errs=0; for f in $(cd "$DATA" && find . -type f | head -3); do
  echo 3 > /proc/sys/vm/drop_caches; cat "$WORK/mnt-web-identity/$f" > /dev/null 2>&1 || errs=$((errs + 1)); done
[ "$errs" -gt 0 ] || fail "reads kept working 8 s into a 12 s outage of 4 s credentials"
grep -q "renewing S3 credentials (web-identity) failed" "$WORK/web-identity.log" || fail "the failed renewal was not logged"
sleep 4.5
bad=$(read_for 3 "$WORK/mnt-web-identity")
[ "$bad" = 0 ] || fail "reads did not recover after STS came back ($bad failed)"
pass "STS down 12 s: reads failed cleanly once the credentials expired ($errs of 3), then recovered"
fusermount3 -u "$WORK/mnt-web-identity"

# The other providers at once, each mount with a home of its own (keys of each endpoint
# are told apart by their names).
echo "$CTOKEN" > "$WORK/ctoken"
for h in container imds process assume-role; do mkdir -p "$WORK/home-$h/.aws"; done
printf '[default]\ncredential_process = curl -sf %s/__issue\n' "$EP" > "$WORK/home-process/.aws/config"
printf '[profile ml]\nrole_arn = arn:aws:iam::1:role/ml\nsource_profile = base\n' > "$WORK/home-assume-role/.aws/config"
printf '[base]\naws_access_key_id = AKSTATIC\naws_secret_access_key = static\n' > "$WORK/home-assume-role/.aws/credentials"
mount_provider container HOME="$WORK/home-container" AWS_CONTAINER_CREDENTIALS_FULL_URI="$EP/creds" \
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$WORK/ctoken"
mount_provider imds HOME="$WORK/home-imds" AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$EP"
mount_provider process HOME="$WORK/home-process"
mount_provider assume-role HOME="$WORK/home-assume-role" AWS_PROFILE=ml
readers=()
for name in container imds process assume-role; do
  read_for 13 "$WORK/mnt-$name" > "$WORK/$name.bad" &
  readers+=($!)
done
wait "${readers[@]}"
check_provider container CTR "$(cat "$WORK/container.bad")"
pass "container credentials (full URI + token file): 0 failed reads, $KEYS keys"
check_provider imds IMDS "$(cat "$WORK/imds.bad")"
pass "IMDSv2: 0 failed reads, $KEYS keys"
check_provider process PROC "$(cat "$WORK/process.bad")"
pass "credential_process: 0 failed reads, $KEYS keys"
check_provider assume-role ROLE "$(cat "$WORK/assume-role.bad")"
pass "role_arn + source_profile (STS AssumeRole): 0 failed reads, $KEYS keys"
for name in container imds process assume-role; do fusermount3 -u "$WORK/mnt-$name"; done
pass "never more than one credential request in flight per mount ($(stats "['issued']") issued in all)"

# No secret in any log at debug level, nor in errors.
python3 - "$WORK" "$EP" "$CTOKEN" <<'PY' || fail "a secret reached a log"
import json, sys, urllib.request, glob
work, ep, ctoken = sys.argv[1:]
logs = "".join(open(p, errors="replace").read() for p in glob.glob(work + "/*.log"))
secrets = [ctoken, "web-identity-token-1", "web-identity-token-2", "static"]
for s in secrets:
    if s in logs and s != "static":
        sys.exit(f"'{s}' in a log")
if "secret_access_key" in logs.lower() or "tok-" in logs or "sk-" in logs:
    sys.exit("a session token or secret key in a log")
PY
# A bad full URI and no provider at all: one line naming what was tried.
mkdir -p "$WORK/mnt-x"
err=$("${clean_env[@]}" AWS_CONTAINER_CREDENTIALS_FULL_URI=http://10.1.2.3/creds "$TIERFS" mount s3://data "$WORK/mnt-x" \
      --index "$WORK/idx" --cache-dir "$WORK/c-x" "${S3OPTS[@]}" 2>&1) && fail "a non-loopback container URI was accepted"
[[ "$err" == *"must name loopback"* ]] || fail "bad container URI: $err"
err=$("${clean_env[@]}" "$TIERFS" mount s3://data "$WORK/mnt-x" --index "$WORK/idx" --cache-dir "$WORK/c-x" "${S3OPTS[@]}" 2>&1) &&
  fail "a mount without credentials succeeded"
[ "$(echo "$err" | wc -l)" = 1 ] && [[ "$err" == *"environment: not set"* ]] || fail "no credentials: $err"
pass "no secret in debug logs; bad container URI and no credentials: one line each ($err)"
