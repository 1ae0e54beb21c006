#!/usr/bin/env bash
# Set up everything on a fresh machine (python3 only) and run detection against localhost.
# Extra arguments go to ansible-playbook, e.g. -i inventory -e detect_hosts=workers --become.
#
# The controller (README "Which ansible-core"): ansible-core 2.16 by default, the last release that
# runs modules on Python 2.7 and 3.6 nodes (CentOS 7). For fleets whose nodes all have Python >= 3.8:
#   NODEOPS_MEMCG_ANSIBLE_CORE=latest ./run-detect.sh ...   (the newest ansible-core pip finds when it
#   builds .venv-run; remove .venv-run to pick up a newer one)
# NODEOPS_MEMCG_PYTHON picks the controller's Python (default python3): 2.16 runs on 3.10-3.12.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv="$repo/.venv-run"
collections="$repo/.venv-run/collections"
core=${NODEOPS_MEMCG_ANSIBLE_CORE:-2.16}
python=${NODEOPS_MEMCG_PYTHON:-python3}

die() { printf 'run-detect: %s\n' "$*" >&2; exit 2; }

command -v "$python" >/dev/null || die "no controller Python '$python' (set NODEOPS_MEMCG_PYTHON)"
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pyminor=${pyver#3.}
case "$core" in
  2.16)
    spec='ansible-core>=2.16,<2.17'
    if [[ $pyver != 3.* ]] || ((pyminor < 10 || pyminor > 12)); then
      die "ansible-core 2.16 (the default, for Python 2.7/3.6 nodes such as CentOS 7) runs on controller" \
        "Python 3.10-3.12, and $python is Python $pyver: set NODEOPS_MEMCG_PYTHON to a python3.10," \
        "3.11 or 3.12 (or, for a fleet without Python 2.7/3.6 nodes, NODEOPS_MEMCG_ANSIBLE_CORE=latest)"
    fi
    ;;
  latest)
    spec='ansible-core>=2.17'
    if [[ $pyver != 3.* ]] || ((pyminor < 10)); then
      die "the newest ansible-core needs controller Python >= 3.10 (2.19: >= 3.11), and $python is" \
        "Python $pyver: set NODEOPS_MEMCG_PYTHON to a newer python3"
    fi
    ;;
  *) die "NODEOPS_MEMCG_ANSIBLE_CORE must be 2.16 (default) or latest, got '$core'" ;;
esac

# What the venv was built for: a different core, Python or requirements.txt rebuilds it.
stamp="$core $(command -v "$python") $pyver $(sha256sum "$repo/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x $venv/bin/ansible-playbook || ! -f $venv/.nodeops-memcg-stamp
  || $(<"$venv/.nodeops-memcg-stamp") != "$stamp" ]]; then
  echo "==> creating $venv with $spec (Python $pyver) and the collection's Python requirements"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "$spec" -r "$repo/requirements.txt"
  echo "$stamp" >"$venv/.nodeops-memcg-stamp"
fi
echo "==> controller: ansible-core $("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')" \
  "on Python $pyver ($venv)"

echo "==> building and installing nodeops.memcg from $repo"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
"$venv/bin/ansible-galaxy" collection build --output-path "$build" "$repo" >/dev/null
"$venv/bin/ansible-galaxy" collection install --force -p "$collections" "$build"/nodeops-memcg-*.tar.gz >/dev/null

report_dir="${DETECT_REPORT_DIR:-$HOME/nodeops-memcg-report}"
inventory=(-i 'localhost,' -c local -e "ansible_python_interpreter=$venv/bin/python")
for arg in "$@"; do
  case "$arg" in -i|--inventory|--inventory=*) inventory=() ;; esac
done

echo "==> running nodeops.memcg.detect"
ANSIBLE_COLLECTIONS_PATH="$collections" "$venv/bin/ansible-playbook" \
  "${inventory[@]}" -e "detect_report_dir=$report_dir" -e '{"detect_print_report": false}' \
  nodeops.memcg.detect "$@"

echo
cat "$report_dir/detect.md"
echo
echo "Report files: $report_dir/detect.json and $report_dir/detect.md"
