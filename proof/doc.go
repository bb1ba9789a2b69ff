// Package proof is spare's proof of GPU: a challenge that is exact, cannot be shortcut, and costs the checker
// a small fraction of the prover's work. A provider shows that it has the int8 throughput of the device class
// it claims by finishing a chain of matrix products before a deadline that the class below cannot meet.
// Everything here is pure computation: no clocks, files or network; callers pass times in.
//
// # Protocol
//
//  1. The auditor picks the parameters for the claimed class (Policy.Params: n, k, s and a deadline) and
//     reveals a fresh 32-byte seed; its clock starts.
//  2. Both sides can derive A and B, n×n int8 matrices (Generator). The provider computes C_0 = A,
//     C_j = wrap(C_{j−1}·B) for j = 1..k (Solve, or an external solver) and commits to C_k with a Merkle root
//     over its rows (Commit). The root must arrive before the deadline.
//  3. Only then are s distinct row indices drawn from the seed and the root (Sample), so the provider cannot
//     know in advance which rows matter. It opens them with Merkle proofs (Tree.Open).
//  4. The auditor recomputes each opened row alone, row_i(C_j) = wrap(row_i(C_{j−1})·B), k·n² multiply-adds
//     against the prover's k·n³ (a ratio of n/s), and checks the proofs (VerifyOpening). A Transcript keeps
//     everything, so anyone can re-check it later (Transcript.Verify).
//
// # Generator
//
// mix32 works on 32-bit words (all arithmetic mod 2^32; ^ is xor, >> a logical shift):
//
//	mix32(x) = x ^= x >> 16; x *= 0x045d9f3b; x ^= x >> 16; x *= 0x045d9f3b; x ^= x >> 16
//
// The keys are k0, k1 = the first two little-endian uint32 words of SHA-256("spare/pogpu/gen/v1" || seed ||
// u32le(n)). Element (i, j) of matrix m (0 for A, 1 for B) has the counter c = m·n² + i·n + j (< 2^31) and
// the value
//
//	int8(mix32(mix32(c ^ k0) ^ k1) >> 24)
//
// the top byte read as two's complement, so values cover −128..127. On int64 tensors every step is exact
// (values stay below 2^32, products below 2^59): mask with 0xffffffff after each multiply.
//
// # Steps and wrap
//
// A step multiplies exactly: with |a·b| ≤ 2^14 and n ≤ MaxN = 2^15, every dot product lies within ±2^29, so
// int32 accumulation (or float64, whose 53-bit mantissa holds every partial sum) is exact in any order.
// Each sum x is then wrapped back to int8:
//
//	wrap(x) = int8(mix32(uint32(x) ^ 0x9e3779b9) >> 24)
//
// Why a mixing wrap: truncation mod 256 is a ring homomorphism, so C_k mod 256 would equal A·B^k mod 256,
// which repeated squaring gets in about log2 k products instead of k. wrap is a hash of the full 32-bit sum:
// it commutes with neither addition nor multiplication, so C_j is no function of A·B^j and each step needs
// the exact sums of the one before. Inexact arithmetic (fp16/fp32 accumulation, TF32) changes low bits of
// the sum and hence the wrapped byte.
//
// # Commitment
//
// leaf_i = SHA-256(0x00 || u32be(i) || the n bytes of row i), inner = SHA-256(0x01 || left || right). The
// leaves are padded to the next power of two with SHA-256(0x02), so the tree is complete and every proof is
// exactly Depth(n) = ⌈log2 n⌉ sibling hashes, leaf level first; bit l of i says whether the sibling at level l
// is on the left (1) or right (0). For n = 1 the root is leaf_0.
//
// # Sampling
//
// SHA-256("spare/pogpu/sample/v1" || seed || root || u32be(n) || u32be(c)) for c = 0, 1, … gives four
// big-endian uint64 words each; a word x below ⌊(2^64−1)/n⌋·n yields row x mod n unless already drawn,
// until s rows are drawn (Sample). The opening lists the rows in that order.
//
// # Encodings
//
// Both are canonical (fixed field sizes, big-endian) and decoded strictly: sizes are checked against the
// limits and the exact expected length before anything is allocated, and trailing bytes are an error.
//
//	opening:    "PGO1" | u32 n | u32 s | s × (u32 index | n row bytes | Depth(n) × 32 proof bytes)
//	transcript: "PGT1" | u8 len | class | seed[32] | u32 n | u32 k | i64 deadline ns |
//	            i64 challenged-at | i64 committed-at (Unix ns) | root[32] | opening
//
// # External solver
//
// A provider computes C_k with its own program (solver/torch_solver.py is the reference, in PyTorch). The
// program reads one JSON object per line on stdin,
//
//	{"seed":"<64 hex digits>","n":N,"k":K}
//
// and answers each with exactly n·n raw bytes on stdout: C_k row-major, each entry a two's-complement byte,
// nothing else. It may serve any number of requests (keeping it running saves its start-up time within a
// deadline); errors go to stderr with a non-zero exit. EncodeRequest, ParseRequest, ReadSolution and
// DecodeSolution are the Go side; CommitAndOpen takes the solver's C_k from there.
//
// # Soundness and sizing
//
// Rows are independent, so a prover that computed a fraction f of them passes only if all s drawn rows are
// among them: probability ≤ f^s, and RowsFor picks s = ⌈ln p / ln f⌉. Policy.Params sets f to the share of
// rows the class below the claimed one can finish by the deadline, and sizes n, k and the deadline from the
// class table (Classes) so that the claimed class finishes well inside it. Classes are separated by
// throughput only: peers within Policy.PeerRatio (an A100 and an RTX 4090) are not told apart. Challenging
// all of a provider's GPUs at once, so one card cannot answer for several, is the caller's job.
//
// # Files
//
// gen.go: challenge, generator, wrap. compute.go: the CPU prover's kernel. tree.go: the row commitment.
// sample.go: drawing rows, sizing s. opening.go: openings, proving, verifying. transcript.go: the record.
// solver.go: the external solver protocol. classes.go: device classes and parameters.
package proof
