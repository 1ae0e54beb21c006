#!/usr/bin/env bash
# Set up everything on a fresh machine (python3 only) and run detection against localhost.
# Extra arguments go to ansible-playbook, e.g. -i inventory -e detect_hosts=workers --become.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv="$repo/.venv-run"
collections="$repo/.venv-run/collections"

if [ ! -x "$venv/bin/ansible-playbook" ]; then
  echo "==> creating $venv with ansible-core and the collection's Python requirements"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'ansible-core>=2.16' -r "$repo/requirements.txt"
fi

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
