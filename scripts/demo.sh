#!/usr/bin/env bash
# The main job, end to end on this machine: `spare dev` runs a validator, a provider, an auditor and the explorer in one
# process; the tenant deploys the training example, watches its logs, gets its outputs verified against the
# provider's signed receipt and pays only for what ran; a GPU job is refused with the reason. Then it all stops.
set -euo pipefail
cd "$(dirname "$0")/.."
SPARE=${SPARE:-$PWD/bin/spare}
HOME_DIR=$(mktemp -d /tmp/spare-demo.XXXXXX)
WORK=$(mktemp -d /tmp/spare-demo-work.XXXXXX)
cleanup() {
  if [ -n "${DEV_PID:-}" ]; then kill "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true; fi
  rm -rf "$HOME_DIR" "$WORK"
}
trap cleanup EXIT
S="$SPARE --home $HOME_DIR/dev --yes" # --yes: the demo runs unattended (at a terminal, a command shows its fee and asks first)

echo "== spare dev (validator, provider on this machine, auditor, explorer, funded keys), in the background"
$SPARE dev --home "$HOME_DIR/dev" --explorer 127.0.0.1:0 --log-level warn > "$WORK/dev.log" 2>&1 &
DEV_PID=$!
for _ in $(seq 1 300); do
  grep -q "spare dev is running" "$WORK/dev.log" 2>/dev/null && break
  kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/dev.log"; exit 1; }
  sleep 0.1
done
cat "$WORK/dev.log"

cp -r examples "$WORK/examples"
cd "$WORK"
echo; echo "== spare deploy examples/train.yaml"
$S deploy examples/train.yaml
echo; echo "== the model it wrote, downloaded and verified against the receipt"
cat outputs/*/out/model.txt
echo; echo "== spare deploy examples/gpu.yaml (this machine's provider has no GPU: expect a clear refusal)"
if $S deploy examples/gpu.yaml --wait 3s; then echo "(a GPU was found: the job ran)"; fi
echo; echo "== balances"
$S balance
echo; echo "== supply invariant"
$S query supply
EXPLORER=$(sed -n 's/^  explorer *//p' "$WORK/dev.log" | head -1)
echo; echo "== the explorer at $EXPLORER (pages update live; JSON under /api): the overview's figures"
if command -v curl >/dev/null 2>&1; then
  curl -fsS "$EXPLORER/api/overview" | grep -E '^ "(height|providers|providers_active|gpus_online|leases|total_paid|txs)"' || true
else
  echo "(curl not installed: open $EXPLORER in a browser)"
fi
echo; echo "== demo finished"
