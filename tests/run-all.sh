#!/usr/bin/env bash
# The test command of nodeops.memcg (README): every check, in order, fail-fast.
#
#   tests/run-all.sh                 run every stage
#   tests/run-all.sh unit sanity     run only those stages (a group name runs all its stages)
#   tests/run-all.sh --list          list stages and groups
#   tests/run-all.sh -k [STAGE ...]  keep going after a failed stage (default: stop at the first)
#
# Stages: vermin, sanity-latest, sanity-2.16, lint, doc-latest, doc-2.16, unit-latest, unit-2.16,
#         galaxy, integration, molecule, vm.   Groups: sanity, doc, unit (both ansible-core versions), all.
#
# It keeps virtualenvs in the repo, .venv-latest (tests/requirements-latest.txt), .venv-2.16
# (tests/requirements-2.16.txt) and, for the galaxy stage, .venv-galaxy (tests/requirements-galaxy.txt),
# reinstalled only when the requirements change, and tests a copy of the collection laid out as
# <tmp>/ansible_collections/nodeops/memcg.
# As root, setup installs the Debian packages it needs (tests/install-system-packages.sh). The vm
# stage boots a Debian guest; its base image is built in the background from the end of setup and
# cached outside git (tests/vm/README.md).
# Environment: PYTHON (interpreter for the venvs, default python3), KEEP_WORKDIR=1 (keep the copy),
#              INTEGRATION_WORKERS (pytest-xdist workers for the integration stage's shared-nothing tests, default 2).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"

PYTHON=${PYTHON:-python3}
if [[ ! -t 1 ]]; then
  # plain logs in CI: ansible-lint, molecule and ansible-playbook colour even into a pipe
  export NO_COLOR=${NO_COLOR:-1} PY_COLORS=${PY_COLORS:-0} ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-1}
fi
VENV_LATEST=$REPO_ROOT/.venv-latest
VENV_216=$REPO_ROOT/.venv-2.16
VENV_GALAXY=$REPO_ROOT/.venv-galaxy
# Bump when the way the venvs are built changes, so existing ones are rebuilt.
SETUP_REVISION=1

ALL_STAGES=(vermin sanity-latest sanity-2.16 lint doc-latest doc-2.16 unit-latest unit-2.16 galaxy integration molecule vm)

log() { printf '%s\n' "$*"; }
core_version() { "$1/bin/python" -c 'import ansible.release as r; print("ansible-core " + r.__version__)'; }
die() { printf 'run-all: %s\n' "$*" >&2; exit 2; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- stage selection

declare -A WANTED=()
KEEP_GOING=0
select_stage() {
  local s
  case "$1" in
    all)
      for s in "${ALL_STAGES[@]}"; do
        WANTED[$s]=1
      done
      ;;
    sanity | doc | unit) WANTED[$1-latest]=1 WANTED[$1-2.16]=1 ;;
    *)
      for s in "${ALL_STAGES[@]}"; do
        if [[ $s == "$1" ]]; then
          WANTED[$s]=1
          return 0
        fi
      done
      die "unknown stage '$1' (stages: ${ALL_STAGES[*]}; groups: sanity doc unit all)"
      ;;
  esac
}

for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    -l | --list) printf '%s\n' "${ALL_STAGES[@]}"; exit 0 ;;
    -k | --keep-going) KEEP_GOING=1 ;;
    *) select_stage "$arg" ;;
  esac
done
if ((${#WANTED[@]} == 0)); then
  select_stage all
fi
SELECTED=()
for s in "${ALL_STAGES[@]}"; do
  if [[ -n ${WANTED[$s]:-} ]]; then
    SELECTED+=("$s")
  fi
done

wants() { # any of the given stages selected?
  local s
  for s in "$@"; do
    [[ -n ${WANTED[$s]:-} ]] && return 0
  done
  return 1
}

# ---------------------------------------------------------------- bookkeeping

RESULT_NAMES=()
RESULT_STATUS=()
RESULT_SECS=()

now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

print_summary() {
  local i passed=0 failed=0 skipped=0
  log ""
  log "==================== summary ===================="
  for i in "${!RESULT_NAMES[@]}"; do
    printf '  %-14s %-8s %7ss\n' "${RESULT_NAMES[$i]}" "${RESULT_STATUS[$i]%%:*}" "${RESULT_SECS[$i]}"
    case "${RESULT_STATUS[$i]}" in
      passed) passed=$((passed + 1)) ;;
      failed*) failed=$((failed + 1)) ;;
      skipped*) skipped=$((skipped + 1)) ;;
    esac
  done
  for i in "${!RESULT_NAMES[@]}"; do
    case "${RESULT_STATUS[$i]}" in
      skipped:* | failed:*) log "  ${RESULT_NAMES[$i]}: ${RESULT_STATUS[$i]#*:}" ;;
    esac
  done
  log "total $(elapsed "$RUN_START" "$(now)")s"
  log "stages: $passed passed, $failed failed, $skipped skipped"
}

# A stage runs in a subshell with errexit; it ends with `skip "reason"` when it has nothing to do.
skip() {
  printf '%s\n' "$*" >"$SKIP_FILE"
  exit 0
}

run_stage() { # name function
  local name=$1 fn=$2 start rc secs reason
  log ""
  log "==================== stage $name ===================="
  rm -f "$SKIP_FILE"
  start=$(now)
  set +e
  (
    set -euo pipefail
    "$fn"
  )
  rc=$?
  set -e
  secs=$(elapsed "$start" "$(now)")
  RESULT_NAMES+=("$name")
  RESULT_SECS+=("$secs")
  if ((rc != 0)); then
    RESULT_STATUS+=("failed:exit code $rc")
    log "==================== stage $name FAILED (exit code $rc, ${secs}s) ===================="
    FIRST_FAILURE=${FIRST_FAILURE:-$name}
    FAILURE_RC=${FAILURE_RC:-$rc}
    if ((KEEP_GOING == 0)) || [[ $name == setup ]]; then
      print_summary
      log "run-all: stopped at the first failure: stage '$name'" >&2
      exit "$rc"
    fi
    return 0
  fi
  if [[ -s $SKIP_FILE ]]; then
    reason=$(<"$SKIP_FILE")
    RESULT_STATUS+=("skipped:$reason")
    log "==================== stage $name skipped: $reason (${secs}s) ===================="
  else
    RESULT_STATUS+=("passed")
    log "==================== stage $name passed (${secs}s) ===================="
  fi
}

# ---------------------------------------------------------------- setup

# Create or reuse a venv; reinstall only when the requirements (or Python, or this recipe) change.
ensure_venv() { # dir requirements-file
  local dir=$1 req=$2 want
  want=$({
    cat "$req"
    "$PYTHON" -c 'import sys; print(sys.version)'
    echo "revision $SETUP_REVISION"
  } | sha256sum | cut -d' ' -f1)
  if [[ -f $dir/.requirements-stamp && $(<"$dir/.requirements-stamp") == "$want" ]] \
    && "$dir/bin/python" -c 'import ansible' 2>/dev/null; then
    log "reusing ${dir#"$REPO_ROOT"/} ($req unchanged)"
    return 0
  fi
  log "creating ${dir#"$REPO_ROOT"/} from $req"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install -qq --progress-bar off --upgrade pip
  "$dir/bin/python" -m pip install -qq --progress-bar off -r "$req"
  "$dir/bin/python" -m pip check
  echo "$want" >"$dir/.requirements-stamp"
}

# Copy the collection (tracked and untracked-not-ignored files) to
# $COLLECTIONS_DIR/ansible_collections/nodeops/memcg: ansible-test wants that path, without symlinks.
copy_collection() {
  mkdir -p "$COLLECTION"
  if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$REPO_ROOT" ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do
        # skip tracked files deleted in the work tree
        if [[ -e $f || -L $f ]]; then
          printf '%s\0' "$f"
        fi
      done \
      | tar -C "$REPO_ROOT" --null --no-recursion -T - -cf - \
      | tar -C "$COLLECTION" -xf -
  else
    tar -C "$REPO_ROOT" -cf - \
      --exclude=./.git --exclude='./.venv*' --exclude=./tests/output --exclude=./.ansible \
      --exclude='__pycache__' --exclude='*.pyc' --exclude=./.pytest_cache --exclude='*.tar.gz' \
      --exclude=./memcg-report . \
      | tar -C "$COLLECTION" -xf -
  fi
  log "collection copied to $COLLECTION ($(find "$COLLECTION" -type f | wc -l) files)"
}

# ansible-test seeds each sanity venv with get-pip.py, downloaded from the network. Offline, a
# cached stand-in does the same job from ensurepip plus PyPI. The file name carries the pip version
# the installed ansible-test pins; take it from its source, and write the known ones as well.
GET_PIP_MARKER='nodeops.memcg offline get-pip stand-in'
write_get_pip_standins() {
  local cache=$HOME/.ansible/test/cache venv src version file
  local -A versions=([24.2]=1 [23.1.2]=1)
  for venv in "$@"; do
    src=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
    version=$(sed -nE "s/^[[:space:]]*pip='([0-9.]+)',?[[:space:]]*$/\1/p; T; q" \
      "$src/_internal/python_requirements.py")
    if [[ -n $version ]]; then
      versions[$version]=1
    else
      log "warning: no pinned pip version found in $src/_internal/python_requirements.py"
    fi
  done
  mkdir -p "$cache"
  for version in "${!versions[@]}"; do
    file=$cache/get_pip_${version//./_}.py
    if [[ -f $file ]] && ! grep -q "$GET_PIP_MARKER" "$file"; then
      log "keeping the real $file"
      continue
    fi
    cat >"$file" <<EOF
# $GET_PIP_MARKER, written by tests/run-all.sh.
# ansible-test runs it as get-pip.py: install pip from ensurepip, then pip $version and the
# packages ansible-test asked for from the package index.
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--upgrade', '--force-reinstall'] + args)
EOF
    log "offline get-pip stand-in: $file"
  done
}

setup() {
  if ((EUID == 0)); then
    tests/install-system-packages.sh
  fi
  log "python for the venvs: $(command -v "$PYTHON") ($("$PYTHON" -c 'import sys; print(sys.version.split()[0])'))"
  ensure_venv "$VENV_LATEST" tests/requirements-latest.txt
  core_version "$VENV_LATEST"
  if wants sanity-2.16 doc-2.16 unit-2.16 integration; then
    ensure_venv "$VENV_216" tests/requirements-2.16.txt
    core_version "$VENV_216"
  fi
  if wants galaxy; then
    ensure_venv "$VENV_GALAXY" tests/requirements-galaxy.txt
  fi
  copy_collection
  if wants sanity-latest sanity-2.16; then
    local venvs=("$VENV_LATEST")
    if wants sanity-2.16; then
      venvs+=("$VENV_216")
    fi
    write_get_pip_standins "${venvs[@]}"
  fi
}

# ---------------------------------------------------------------- stages

# Modules and everything shipped to nodes run on the target's Python: 2.7 (CentOS 7) and 3.6+.
stage_vermin() {
  local files=()
  mapfile -d '' files < <(find plugins/modules plugins/module_utils -name '*.py' -type f -print0 2>/dev/null | sort -z)
  # Scripts shipped to nodes: *.py, or anything whose first line names python.
  local shipped
  while IFS= read -r -d '' shipped; do
    if [[ $shipped == *.py ]] || head -n 1 "$shipped" | grep -q '^#!.*python'; then
      files+=("$shipped")
    fi
  done < <(find roles/*/files -type f -print0 2>/dev/null | sort -z)
  if ((${#files[@]} == 0)); then
    skip "no target-side Python files yet"
  fi
  log "vermin: ${#files[@]} files, targets 2.7 and 3.6"
  "$VENV_LATEST/bin/vermin" --no-tips --violations -t=2.7- -t=3.6- "${files[@]}"
  log "vermin: all ${#files[@]} files run on Python 2.7 and 3.6"
}

sanity() { # venv label
  local venv=$1 label=$2 listing out ran py rc=0
  export PATH="$venv/bin:$PATH"
  # the controller's own Python (3.11 on CI): the only one ansible-test finds here
  py=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  cd "$COLLECTION"
  if ! command -v shellcheck >/dev/null; then
    log "note: shellcheck is not installed, ansible-test skips that test (.ci/run installs it)"
  fi
  listing=$(ansible-test sanity --list-tests --python "$py")
  log "ansible-test sanity ($label, $(core_version "$venv")) tests:"
  printf '%s\n' "$listing" | paste -sd ' ' | fold -s -w 100 | sed 's/^/  /'
  if [[ $label == 2.16 ]]; then
    # the checks Python 2.7 targets need; newer ansible-core releases dropped them
    local t
    for t in future-import-boilerplate metaclass-boilerplate; do
      grep -qx "$t" <<<"$listing" || { log "ansible-test 2.16 does not list '$t'"; return 1; }
    done
  fi
  out=$WORKDIR/sanity-$label.log
  ansible-test sanity --python "$py" --color no 2>&1 | tee "$out" || rc=$?
  ran=$(grep -cE "^Running sanity test [\"']" "$out" || true)
  log "ansible-test sanity ($label): $ran tests ran, exit code $rc"
  if ((ran == 0)); then
    log "ansible-test ran no sanity test"
    return 1
  fi
  return "$rc"
}
stage_sanity_latest() { sanity "$VENV_LATEST" latest; }
stage_sanity_2_16() { sanity "$VENV_216" 2.16; }

stage_lint() {
  export PATH="$VENV_LATEST/bin:$PATH"
  export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
  cd "$COLLECTION"
  ansible-lint --version
  ansible-lint --offline
}

doc() { # venv
  local venv=$1 modules=() path name fqcn out err n=0
  export PATH="$venv/bin:$PATH"
  export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
  mapfile -t modules < <(find "$COLLECTION/plugins/modules" -maxdepth 1 -name '*.py' ! -name '__init__.py' -type f 2>/dev/null | sort)
  if ((${#modules[@]} == 0)); then
    skip "no modules in plugins/modules yet"
  fi
  cd "$WORKDIR"
  err=$WORKDIR/ansible-doc.err
  for path in "${modules[@]}"; do
    name=$(basename "$path" .py)
    fqcn=nodeops.memcg.$name
    if ! out=$(ansible-doc -t module "$fqcn" 2>"$err"); then
      cat "$err"
      log "ansible-doc failed for $fqcn"
      return 1
    fi
    if [[ -s $err ]]; then
      cat "$err"
      log "ansible-doc warned for $fqcn"
      return 1
    fi
    if ! grep -qi "^> .*$fqcn" <<<"$out" || ! grep -q 'EXAMPLES' <<<"$out" || ! grep -q 'RETURN' <<<"$out"; then
      printf '%s\n' "$out"
      log "ansible-doc did not render $fqcn with EXAMPLES and RETURN VALUES"
      return 1
    fi
    log "  $fqcn: $(wc -l <<<"$out") lines"
    n=$((n + 1))
  done
  log "ansible-doc ($(core_version "$venv")): $n modules rendered"
}
stage_doc_latest() { doc "$VENV_LATEST"; }
stage_doc_2_16() { doc "$VENV_216"; }

unit() { # venv
  local rc=0
  "$1/bin/python" -m pytest tests/unit -ra || rc=$?
  if ((rc == 5)); then
    log "pytest collected no unit test: that is a failure"
  fi
  return "$rc"
}
stage_unit_latest() { unit "$VENV_LATEST"; }
stage_unit_2_16() { unit "$VENV_216"; }

# What Galaxy and Automation Hub run on upload: galaxy-importer on the built tarball (ansible-lint
# inside it; ansible-test off, it wants a container), any WARNING or ERROR it logs failing the stage;
# then the plugin docs and the changelog fragments linted. The linters run beside the importer.
stage_galaxy() {
  local build=$WORKDIR/galaxy-build log=$WORKDIR/galaxy-importer.log tarball docs_pid changelog_pid rc=0 t0
  export PATH="$VENV_GALAXY/bin:$PATH"
  cd "$COLLECTION"
  mkdir -p "$build"
  ansible-galaxy collection build --force --output-path "$build" . >/dev/null
  tarball=$(find "$build" -name '*.tar.gz' | head -n 1)
  log "built ${tarball##*/} ($(tar -tzf "$tarball" | wc -l) entries)"
  antsibull-docs lint-collection-docs --plugin-docs . >"$WORKDIR/antsibull-docs.log" 2>&1 &
  docs_pid=$!
  antsibull-changelog lint >"$WORKDIR/antsibull-changelog.log" 2>&1 &
  changelog_pid=$!
  printf '[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = True\n' >"$WORKDIR/galaxy-importer.cfg"
  t0=$(now)
  GALAXY_IMPORTER_CONFIG=$WORKDIR/galaxy-importer.cfg python -m galaxy_importer.main "$tarball" >"$log" 2>&1 || rc=$?
  log "galaxy-importer $(pip show galaxy-importer 2>/dev/null | sed -n 's/^Version: //p'): exit code $rc, $(elapsed "$t0" "$(now)")s"
  if ((rc != 0)) || grep -qE '^(WARNING|ERROR|CRITICAL)' "$log"; then
    cat "$log"
    log "galaxy-importer failed or warned (above)"
    rc=1
  fi
  linter_clean "$docs_pid" "$WORKDIR/antsibull-docs.log" 'antsibull-docs lint-collection-docs --plugin-docs' || rc=1
  linter_clean "$changelog_pid" "$WORKDIR/antsibull-changelog.log" 'antsibull-changelog lint' || rc=1
  return "$rc"
}

# A background linter is clean when it exits 0 and prints nothing.
linter_clean() { # pid log name
  if ! wait "$1" || [[ -s $2 ]]; then
    cat "$2"
    log "$3 failed or reported (above)"
    return 1
  fi
  log "$3: clean"
}

# Tests that start ansible-playbook and ansible-runner: the latest venv's, on the collection copy.
pytest_with_ansible() { # test directory [pytest arguments]
  export PATH="$VENV_LATEST/bin:$PATH"
  export VIRTUAL_ENV=$VENV_LATEST
  export NODEOPS_MEMCG_COLLECTIONS_PATH=$COLLECTIONS_DIR
  # ansible-core 2.16 for the tests that run modules on Python 2.7/3.6 nodes (CentOS 7)
  export NODEOPS_MEMCG_ANSIBLE_216_BIN=$VENV_216/bin
  "$VENV_LATEST/bin/python" -m pytest "$@" -ra --durations=20
}

stage_integration() {
  local rc=0
  if [[ ! -d tests/integration ]]; then
    skip "no tests/integration directory"
  fi
  if ((EUID != 0)); then
    log "warning: integration tests expect root"
  fi
  # First, alone and in order, the tests that read or change this machine's memory cgroups
  # (host_state, see tests/integration/conftest.py); then the rest on two workers: they mostly wait
  # on kubectl, sshd or timeouts, not the CPU.
  local host_rc=0
  pytest_with_ansible tests/integration -m host_state || host_rc=$?
  pytest_with_ansible tests/integration -m 'not host_state' -n "${INTEGRATION_WORKERS:-2}" --dist loadgroup || rc=$?
  if ((host_rc == 5 && rc == 5)); then
    skip "pytest collected no integration test"
  fi
  ((host_rc == 5)) && host_rc=0 # every file of one kind may be gone; none at all is the skip above
  ((rc == 5)) && rc=0
  if ((host_rc != 0)); then
    return "$host_rc"
  fi
  return "$rc"
}

stage_molecule() {
  local scenarios=()
  mapfile -t scenarios < <(find "$COLLECTION/molecule" -mindepth 2 -maxdepth 2 -name molecule.yml 2>/dev/null \
    | sed 's|/molecule.yml$||; s|.*/||' | sort)
  if ((${#scenarios[@]} == 0)); then
    skip "no molecule/<scenario>/molecule.yml"
  fi
  export PATH="$VENV_LATEST/bin:$PATH"
  export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
  cd "$COLLECTION"
  log "molecule scenarios: ${scenarios[*]}"
  molecule --version
  molecule test --all
}

# A real Debian guest under qemu: the upgrade playbook reboots it into a newer kernel, and the
# probe and the mitigation run in it under cgroup v1 and v2 (tests/vm/README.md).
stage_vm() {
  local rc=0
  if ((EUID != 0)); then
    log "the VM tests need root (debootstrap, chroot, qemu)"
    return 1
  fi
  if [[ -f $VM_BUILD_LOG ]]; then
    log "waiting for the background base image build (tests/vm/build_image.sh)"
    flock "$VM_CACHE/.lock" true
    cat "$VM_BUILD_LOG"
  fi
  pytest_with_ansible tests/vm || rc=$?
  if ((rc == 5)); then
    log "pytest collected no VM test: that is a failure"
  fi
  return "$rc"
}

# The base image takes minutes on a fresh machine (debootstrap): build it while the other stages
# run. A second build_image.sh (the vm stage's) waits on the cache lock and then reuses it.
start_vm_image_build() {
  if ! wants vm || ((EUID != 0)) || ! command -v debootstrap >/dev/null; then
    return 0
  fi
  mkdir -p "$VM_CACHE"
  # its own process group, so that stopping it also stops debootstrap and the chroot's processes
  setsid tests/vm/build_image.sh >"$VM_BUILD_LOG" 2>&1 </dev/null &
  VM_BUILD_PID=$!
  log "building the VM base image in the background (pid $VM_BUILD_PID)"
}

stop_vm_image_build() {
  if [[ -n ${VM_BUILD_PID:-} ]] && kill -0 "$VM_BUILD_PID" 2>/dev/null; then
    log "stopping the background VM image build (pid $VM_BUILD_PID)"
    kill -TERM -- "-$VM_BUILD_PID" 2>/dev/null || true
    wait "$VM_BUILD_PID" 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------- main

RUN_START=$(now)
WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/nodeops-memcg-test.XXXXXX")
COLLECTIONS_DIR=$WORKDIR/collections
COLLECTION=$COLLECTIONS_DIR/ansible_collections/nodeops/memcg
SKIP_FILE=$WORKDIR/stage-skipped
VM_CACHE=${NODEOPS_MEMCG_VM_CACHE:-/var/cache/nodeops-memcg-vm}
VM_BUILD_LOG=$WORKDIR/vm-image-build.log
cleanup() {
  stop_vm_image_build
  if [[ ${KEEP_WORKDIR:-} == 1 ]]; then
    log "kept $WORKDIR"
  else
    rm -rf "$WORKDIR"
  fi
}
trap cleanup EXIT

log "nodeops.memcg tests in $REPO_ROOT; stages: ${SELECTED[*]}"
run_stage setup setup
start_vm_image_build
for stage in "${SELECTED[@]}"; do
  run_stage "$stage" "stage_${stage//[-.]/_}"
done
print_summary
if [[ -n ${FIRST_FAILURE:-} ]]; then
  log "run-all: failed; first failure: stage '$FIRST_FAILURE'" >&2
  exit "$FAILURE_RC"
fi
