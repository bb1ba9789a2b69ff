# A real torch.distributed rendezvous across cluster members: the env:// method reads RANK, WORLD_SIZE,
# MASTER_ADDR and MASTER_PORT, exactly what torchrun would set. Gloo on CPU (NCCL on GPUs would be the same
# call with backend="nccl"). Each member adds rank + 1; after all_reduce every member holds the sum.
import os

import torch
import torch.distributed as dist

dist.init_process_group(backend="gloo", init_method="env://")
rank, world = dist.get_rank(), dist.get_world_size()
t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)
print(f"rank {rank} of {world}: all_reduce sum = {int(t.item())}", flush=True)
os.makedirs("out", exist_ok=True)
with open("out/allreduce.txt", "w") as f:
    f.write(f"{int(t.item())}\n")
dist.destroy_process_group()
