# Each member of a cluster job runs this. Rank 0 listens on MASTER_PORT; every other rank connects to
# MASTER_ADDR:MASTER_PORT, says hello and reads the answer. Only the Python standard library.
import os
import socket
import time

rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
os.makedirs("out", exist_ok=True)
print(f"rank {rank} of {world}; rendezvous {addr}:{port}; peers {os.environ['SPARE_PEERS']}", flush=True)

if rank == 0:
    server = socket.create_server(("", port))
    server.settimeout(60)
    got = []
    for _ in range(world - 1):
        conn, _ = server.accept()
        with conn, conn.makefile("rw") as f:
            line = f.readline().strip()
            got.append(line)
            f.write(f"welcome, {line.split()[3]}\n")
            f.flush()
        print(f"rank 0 got: {line}", flush=True)
    with open("out/messages.txt", "w") as out:
        out.write("\n".join(sorted(got)) + "\n")
else:
    deadline = time.time() + 60
    while True:
        try:
            conn = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    with conn, conn.makefile("rw") as f:
        f.write(f"hello from rank {rank} of {world}\n")
        f.flush()
        answer = f.readline().strip()
    print(f"rank {rank} got: {answer}", flush=True)
    with open("out/answer.txt", "w") as out:
        out.write(answer + "\n")
