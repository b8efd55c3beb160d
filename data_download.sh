#!/usr/bin/env bash
# Download a dataset of the course from Kaggle into data/<name>/ (or $INPAINT_DATA/<name>/).
# A thin wrapper: the logic (credentials check, kaggle CLI with a timeout, archive check, safe
# extraction, the .complete marker that makes a re-run a no-op) is in inpaint_utils/data/downloads.py.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
    cat <<'EOF'
usage: bash data_download.sh NAME [--dest DIR] [--force] [--keep-archive] [--timeout SECONDS]
       bash data_download.sh list

NAME is one of: celeba-hq, cityscapes, places365, animals-90, imagenet-subset
(`bash data_download.sh list` shows their Kaggle ids and which are downloaded).

Needs the kaggle CLI (pip install kaggle) and a Kaggle API token: kaggle.com -> Settings -> API ->
Create New Token, saved as ~/.kaggle/kaggle.json with `chmod 600 ~/.kaggle/kaggle.json`.
Environment: INPAINT_DATA (target root, default data/), INPAINT_DOWNLOAD_TIMEOUT (seconds, default 3600).
EOF
}

if [ "$#" -eq 0 ]; then
    usage >&2
    exit 2
fi
case "$1" in
    -h|--help|help) usage; exit 0 ;;
esac

# The project's virtual environment when there is one, else python3 with the checkout importable.
if [ -x "$here/.venv/bin/python" ]; then
    py="$here/.venv/bin/python"
else
    py="$(command -v python3 || true)"
    if [ -z "$py" ]; then
        echo "error: python3 not found; run 'make install' first" >&2
        exit 1
    fi
fi
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"

if [ "$1" = "list" ]; then
    exec "$py" -m inpaint_utils.data list
fi
exec "$py" -m inpaint_utils.data download --backend kaggle "$@"
