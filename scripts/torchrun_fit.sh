#!/bin/bash
# DDP training with torchrun (Lightning detects TorchElasticEnvironment). Run from the repository root; extra
# arguments go to `poselift fit`.
#
#   one node, 4 GPUs:
#     NPROC=4 CONFIG=configs/experiments/h36m_cpn_243f.yaml scripts/torchrun_fit.sh
#   two nodes with 4 GPUs each; run on both nodes, NODE_RANK=0 on the node whose address is MASTER_ADDR:
#     NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 MASTER_PORT=29500 NPROC=4 CONFIG=... scripts/torchrun_fit.sh
#   without NODE_RANK the nodes meet through the c10d rendezvous at MASTER_ADDR:MASTER_PORT instead.
#   resume:
#     NPROC=4 CONFIG=RUN/config.yaml scripts/torchrun_fit.sh --ckpt_path RUN/checkpoints/last.ckpt
set -euo pipefail
CONFIG=${CONFIG:-configs/experiments/h36m_cpn_243f.yaml}
NNODES=${NNODES:-1}
NPROC=${NPROC:-1}                        # processes (GPUs) per node
STRATEGY=${STRATEGY:-ddp}                # adversarial regime: ddp_find_unused_parameters_true
TORCHRUN=${TORCHRUN:-torchrun}

if [ "$NNODES" -eq 1 ]; then
    RENDEZVOUS=(--standalone)
elif [ -n "${NODE_RANK:-}" ]; then       # static rendezvous: fixed node ranks
    RENDEZVOUS=(--node-rank "$NODE_RANK" --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT")
else                                     # c10d rendezvous: node ranks given on arrival
    RENDEZVOUS=(--rdzv-backend c10d --rdzv-endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv-id "${RDZV_ID:-poselift}")
fi

# devices x num_nodes must equal torchrun's world size (NPROC x NNODES), or Lightning stops with a ValueError
$TORCHRUN --nnodes "$NNODES" --nproc-per-node "$NPROC" "${RENDEZVOUS[@]}" "$(dirname "$0")/../cli.py" fit \
    -c "$CONFIG" --trainer.devices "$NPROC" --trainer.num_nodes "$NNODES" --trainer.strategy "$STRATEGY" "$@"
