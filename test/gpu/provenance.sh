#!/usr/bin/env bash
# Prints the provenance block that heads every GPU and parity record (summary.txt, logs, JSON):
# which sources the binaries were built from and which device headers they embed, as
# "key: value" lines (test/parity/hf_parity.py reads them from $XLC_PROVENANCE into its JSON).
#
#   bash test/gpu/provenance.sh [--bundle FILE] [--build-dir DIR | --headers-hash HEX]
#   bash test/gpu/provenance.sh --stamp BLOCK JSON...
#
#   --bundle FILE     binaries from a bundle: FILE is its .gpu/PROVENANCE, written on the
#                     development machine by scripts/gpu-bundle.sh (which calls this script);
#                     its lines are printed as they are, then where and when this run happens.
#   --build-dir DIR   binaries built here: the device-header hash is read from the build's
#                     generated runtime/device/EmbeddedDeviceHeaders.cpp (headerHash()).
#   --headers-hash H  the device-header hash, given (scripts/gpu-bundle.sh).
#   --stamp BLOCK JSON...  adds the block (a file of these lines) to each JSON record that is an
#                     object, as "provenance": {key: value, ...} (needs python3; else a no-op).
#
# Without --bundle the commit comes from git when the repository has its .git (commit, and tree:
# clean or dirty with the number of changed paths and a hash of `git diff HEAD`); else from
# .gpu/PROVENANCE if there is one (commit_source says so: the checkout may differ from the
# bundle); else it is "unknown". Keys:
#   commit, tree, commit_source, device_headers_hash, headers_hash_source, [bundle_made,
#   bundle_artifacts, provenance_file, checkout_commit], recorded (UTC), host.
# Exit status 0; a missing value is written as "unknown (why)", never left out.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bundle=""
build_dir=""
headers=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="$2"; shift ;;
    --build-dir) build_dir="$2"; shift ;;
    --headers-hash) headers="$2"; shift ;;
    --stamp)
      shift
      command -v python3 > /dev/null || exit 0
      python3 - "$@" <<'PY'
import json, os, sys
prov = {}
for line in open(sys.argv[1]):
    key, sep, value = line.rstrip("\n").partition(": ")
    if sep and key not in prov:
        prov[key] = value
for path in sys.argv[2:]:
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"provenance.sh: not stamped: {path}: {e}", file=sys.stderr)
        continue
    if isinstance(doc, dict):
        doc["provenance"] = prov
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(path + ".tmp", path)
PY
      exit 0 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "provenance.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# field FILE KEY: the value of "KEY: value" in FILE (first occurrence), empty if absent.
field() { sed -n "s/^$2: //p" "$1" 2>/dev/null | head -n 1; }

git_commit() { git -C "$here" rev-parse HEAD 2>/dev/null; }
git_tree() {
  local status n sum
  status="$(git -C "$here" status --porcelain 2>/dev/null)" || { echo "unknown (git status failed)"; return; }
  if [ -z "$status" ]; then
    echo clean
  else
    n="$(printf '%s\n' "$status" | wc -l | tr -d ' ')"
    sum="$(git -C "$here" diff HEAD 2>/dev/null | sha256sum | cut -c1-16)"
    echo "dirty ($n changed paths; sha256 of git diff HEAD: $sum)"
  fi
}

headers_from_build() {
  local gen="$1/runtime/device/EmbeddedDeviceHeaders.cpp"
  sed -n 's/.*headerHash() { return "\([0-9a-f]*\)"; }.*/\1/p' "$gen" 2>/dev/null | head -n 1
}

if [ -n "$bundle" ]; then
  if [ -f "$bundle" ]; then
    cat "$bundle"
    echo "provenance_file: $bundle"
  else
    echo "commit: unknown (no $bundle: rebuild the bundle with scripts/gpu-bundle.sh)"
    echo "commit_source: none"
  fi
  if c="$(git_commit)" && [ -n "$c" ] && [ "$c" != "$(field "$bundle" commit)" ]; then
    echo "checkout_commit: $c (the scripts that ran; the binaries are the bundle's)"
  fi
else
  if c="$(git_commit)" && [ -n "$c" ]; then
    echo "commit: $c"
    echo "tree: $(git_tree)"
    echo "commit_source: git"
  elif [ -f "$here/.gpu/PROVENANCE" ] && [ -n "$(field "$here/.gpu/PROVENANCE" commit)" ]; then
    echo "commit: $(field "$here/.gpu/PROVENANCE" commit)"
    echo "tree: $(field "$here/.gpu/PROVENANCE" tree)"
    echo "commit_source: .gpu/PROVENANCE of the bundle made $(field "$here/.gpu/PROVENANCE" bundle_made) (no .git here; the checkout may differ)"
  else
    echo "commit: unknown (no .git here and no .gpu/PROVENANCE)"
    echo "tree: unknown"
    echo "commit_source: none"
  fi
  if [ -z "$headers" ] && [ -n "$build_dir" ]; then
    headers="$(headers_from_build "$build_dir")"
    if [ -n "$headers" ]; then
      echo "device_headers_hash: $headers"
      echo "headers_hash_source: $build_dir/runtime/device/EmbeddedDeviceHeaders.cpp"
    else
      echo "device_headers_hash: unknown (no EmbeddedDeviceHeaders.cpp in $build_dir)"
    fi
  elif [ -n "$headers" ]; then
    echo "device_headers_hash: $headers"
  else
    echo "device_headers_hash: unknown (no build directory or hash given)"
  fi
fi
echo "recorded: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "host: $(hostname 2>/dev/null || echo unknown)"
exit 0
