// Command vault measures Spare Vault end to end on `spare dev`: `spare store put` and `spare store get` of one
// object (1 GiB by default) against a plain copy of the same file on the same disk, in the same run, reported as
// ratios. The put codes the object (2 data + 2 parity shards a stripe on spare dev), stores its manifest, waits
// for the ledger's draw and uploads every shard to its provider over TLS; the get reads any two shards of each
// stripe back, verified as they stream, and checks the whole object against its root. Everything runs on this
// machine: four provider daemons, the validator and the client share its cores.
//
//	go run ./bench/vault -size 1GiB
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/tenant"
	"github.com/sparenet/spare/vault"
)

func main() {
	size := flag.Int64("size", 1<<30, "object size in bytes")
	dir := flag.String("dir", "", "where the files and the dev network go (default: a temporary directory)")
	jsonOut := flag.Bool("json", false, "print the figures as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the put and the get (the whole process: client, providers, node) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*size, *dir, *jsonOut); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

type result struct {
	Size     int64   `json:"size"`
	CopyS    float64 `json:"copy_s"`
	PutS     float64 `json:"put_s"`
	GetS     float64 `json:"get_s"`
	PutRatio float64 `json:"put_ratio"`
	GetRatio float64 `json:"get_ratio"`
	Shards   int     `json:"shards"`
}

func run(size int64, dir string, jsonOut bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "spare-bench-vault-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	home := filepath.Join(dir, "dev")
	ready := make(chan devnet.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- devnet.Run(ctx, devnet.Options{Home: home, NoDocker: true, Providers: 4, BlockTime: 200 * time.Millisecond,
			NvidiaSMI: "/nonexistent/nvidia-smi", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, func(i devnet.Info) { ready <- i })
	}()
	var info devnet.Info
	select {
	case info = <-ready:
	case err := <-done:
		return fmt.Errorf("spare dev: %w", err)
	}
	defer func() { cancel(); <-done }()
	kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		return err
	}
	key, err := kr.Signer("tenant")
	if err != nil {
		return err
	}
	c, err := client.New(info.RPC, client.Options{})
	if err != nil {
		return err
	}
	tn := tenant.New(c, key, nil)

	src := filepath.Join(dir, "object.bin")
	want, err := writeRandom(src, size)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := copyFile(src, filepath.Join(dir, "copy.bin")); err != nil {
		return err
	}
	res := result{Size: size, CopyS: time.Since(start).Seconds()}

	start = time.Now()
	put, err := tn.StorePut(ctx, src, tenant.PutOptions{Coding: vault.DevCoding, Months: 1, TempDir: dir})
	if err != nil {
		return err
	}
	res.PutS, res.Shards = time.Since(start).Seconds(), len(put.Shards)

	back := filepath.Join(dir, "back.bin")
	start = time.Now()
	if _, err := tenant.StoreGet(ctx, c, put.Root, back, tenant.GetOptions{}); err != nil {
		return err
	}
	res.GetS = time.Since(start).Seconds()
	got, err := sumFile(back)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("the object read back differs from what was stored")
	}
	res.PutRatio, res.GetRatio = res.PutS/res.CopyS, res.GetS/res.CopyS
	if jsonOut {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	mb := float64(size) / 1e6
	fmt.Printf("%d MiB object on spare dev (2+2 shards, %d shards on 4 providers), same disk:\n", size>>20, res.Shards)
	fmt.Printf("  plain copy  %7.2f s  %7.1f MB/s\n", res.CopyS, mb/res.CopyS)
	fmt.Printf("  store put   %7.2f s  %7.1f MB/s  %.2fx the copy\n", res.PutS, mb/res.PutS, res.PutRatio)
	fmt.Printf("  store get   %7.2f s  %7.1f MB/s  %.2fx the copy\n", res.GetS, mb/res.GetS, res.GetRatio)
	return nil
}

// writeRandom writes size pseudo-random bytes to path, synced, and returns their SHA-256.
func writeRandom(path string, size int64) ([]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(1, 2))
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		for i := 0; i < int(n); i += 8 {
			v := r.Uint64()
			for j := 0; j < 8 && i+j < int(n); j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return nil, err
		}
		left -= n
	}
	return h.Sum(nil), f.Sync()
}

// copyFile copies src to dst and syncs it: the baseline.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

func sumFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
