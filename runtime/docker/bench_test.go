package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sparenet/spare/runtime"
)

// Start-to-first-line benchmarks, against a Docker engine (skipped without one, failing with CI=true), with the
// test image of engine_test.go:
//
//	go test -run '^$' -bench 'StartToFirstLine|DirectContainer' -benchtime 20x -count 3 ./runtime/docker
//	go test -run '^$' -bench 'StartVsDirect' -benchtime 30x ./runtime/docker
//
// Both run the same workload, "/bin/sh -c 'out first-line'" (the static test binary printing one line), and time
// from just before the first engine call until that line is seen; removal is untimed.

// benchCommand prints one line and exits.
const benchCommand = "out first-line"

// BenchmarkStartToFirstLine: Runtime.Start on a fresh lease (its own id and directories) until the first complete
// line is in Spec.LogPath, polled every 200 µs. Then, untimed, Wait (which removes the container and the network)
// and a check that nothing of the lease is left.
func BenchmarkStartToFirstLine(b *testing.B) {
	cli := engine(b)
	image := testImage(b, cli)
	r := &Runtime{StopTimeout: 2 * time.Second, Images: []string{testRepo}}
	defer r.Close()
	ctx := context.Background()
	root := b.TempDir()
	var inStart, afterStart time.Duration // Start's own time; from its return to the line in LogPath
	n := 0
	for ; b.Loop(); n++ {
		b.StopTimer()
		s := benchLease(b, root, n, image)
		b.StartTimer()

		t0 := time.Now()
		w, err := r.Start(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := waitFirstLine(s.LogPath, 30*time.Second); err != nil {
			removeLease(cli, s.LeaseID)
			b.Fatal(err)
		}
		t2 := time.Now()

		b.StopTimer()
		inStart += t1.Sub(t0)
		afterStart += t2.Sub(t1)
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		res, err := w.Wait(wctx)
		cancel()
		if err != nil {
			b.Fatalf("Wait: %v", err)
		}
		if res.ExitCode != 0 {
			b.Fatalf("result %+v", res)
		}
		if leaked := removeLease(cli, s.LeaseID); leaked != "" {
			b.Errorf("left after Wait: %s", leaked)
		}
		if err := os.RemoveAll(s.Dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(ms(inStart, n), "start-ms/op")
	b.ReportMetric(ms(afterStart, n), "log-ms/op")
}

// BenchmarkDirectContainer is the baseline: the same image and command through the Engine API by the plainest
// path, as `docker run` does it: ContainerCreate with the default HostConfig (the default bridge network, the
// daemon's default log driver, no limits), ContainerAttach (stream stdout and stderr), ContainerStart, then the
// first line read from the attach stream. Removal (forced) is untimed.
func BenchmarkDirectContainer(b *testing.B) {
	cli := engine(b)
	image := testImage(b, cli)
	ctx := context.Background()
	var steps [3]time.Duration // create and attach; start; from start's return to the line
	n := 0
	for ; b.Loop(); n++ {
		line, id, err := directFirstLine(ctx, cli, image, &steps)
		b.StopTimer()
		if id != "" {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, rerr := cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true})
			cancel()
			if rerr != nil && !cerrdefs.IsNotFound(rerr) {
				b.Errorf("remove container %s: %v", id, rerr)
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		if line != "first-line\n" {
			b.Fatalf("first line %q", line)
		}
		b.StartTimer()
	}
	b.ReportMetric(ms(steps[0], n), "create-ms/op")
	b.ReportMetric(ms(steps[1], n), "start-ms/op")
	b.ReportMetric(ms(steps[2], n), "line-ms/op")
}

// BenchmarkStartVsDirect alternates the two paths above, one of each per iteration, so that both see the same
// load on a shared machine, and reports the medians of each and of the paired differences (added-ms). Removal
// is untimed, as above.
func BenchmarkStartVsDirect(b *testing.B) {
	cli := engine(b)
	image := testImage(b, cli)
	r := &Runtime{StopTimeout: 2 * time.Second, Images: []string{testRepo}}
	defer r.Close()
	ctx := context.Background()
	root := b.TempDir()
	var rt, direct, added []float64
	n := 0
	for ; b.Loop(); n++ {
		b.StopTimer()
		s := benchLease(b, root, n, image)
		t0 := time.Now()
		w, err := r.Start(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		if err := waitFirstLine(s.LogPath, 30*time.Second); err != nil {
			removeLease(cli, s.LeaseID)
			b.Fatal(err)
		}
		dr := time.Since(t0)
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		res, err := w.Wait(wctx)
		cancel()
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("Wait: %+v %v", res, err)
		}
		if leaked := removeLease(cli, s.LeaseID); leaked != "" {
			b.Errorf("left after Wait: %s", leaked)
		}
		if err := os.RemoveAll(s.Dir); err != nil {
			b.Fatal(err)
		}

		var steps [3]time.Duration
		t1 := time.Now()
		line, id, err := directFirstLine(ctx, cli, image, &steps)
		dd := time.Since(t1)
		if id != "" {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, _ = cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true})
			cancel()
		}
		if err != nil || line != "first-line\n" {
			b.Fatalf("direct: %q %v", line, err)
		}
		rt = append(rt, float64(dr)/1e6)
		direct = append(direct, float64(dd)/1e6)
		added = append(added, float64(dr-dd)/1e6)
		b.StartTimer()
	}
	b.ReportMetric(median(rt), "runtime-ms")
	b.ReportMetric(median(direct), "direct-ms")
	b.ReportMetric(median(added), "added-ms")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ms is the mean of n durations adding up to d, in milliseconds.
func ms(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d) / float64(n) / 1e6
}

// directFirstLine creates, attaches to and starts a container and returns its first line of output. id is the
// container's, for removal, once it was created. The durations of create+attach, start and the wait for the line
// are added to steps.
func directFirstLine(ctx context.Context, cli *client.Client, image string, steps *[3]time.Duration) (line, id string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t0 := time.Now()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:      image,
			Entrypoint: []string{"/bin/sh", "-c"},
			Cmd:        []string{benchCommand},
			Labels:     map[string]string{"spare.test": "true"},
		},
	})
	if err != nil {
		return "", "", fmt.Errorf("create: %w", err)
	}
	id = created.ID
	att, err := cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return "", id, fmt.Errorf("attach: %w", err)
	}
	defer att.Close()
	t1 := time.Now()
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return "", id, fmt.Errorf("start: %w", err)
	}
	t2 := time.Now()
	line, err = firstStreamLine(att.Reader)
	if err != nil {
		return "", id, fmt.Errorf("attach stream: %w", err)
	}
	t3 := time.Now()
	steps[0] += t1.Sub(t0)
	steps[1] += t2.Sub(t1)
	steps[2] += t3.Sub(t2)
	return line, id, nil
}

// firstStreamLine reads a multiplexed stream (8-byte frame headers: stream, 0, 0, 0, big-endian size) until a
// complete line has come on either stream, and returns it.
func firstStreamLine(r *bufio.Reader) (string, error) {
	var hdr [8]byte
	var acc [3][]byte // what came per stream (stdin, stdout, stderr)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return "", err
		}
		p := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
		if _, err := io.ReadFull(r, p); err != nil {
			return "", err
		}
		k := int(hdr[0])
		if k > 2 {
			return "", fmt.Errorf("engine error: %s", bytes.TrimSpace(p))
		}
		acc[k] = append(acc[k], p...)
		if i := bytes.IndexByte(acc[k], '\n'); i >= 0 {
			return string(acc[k][:i+1]), nil
		}
	}
}

// benchLease is a Spec for a fresh lease: a random id (concurrent runs do not collide) and directories of its own
// under root.
func benchLease(b *testing.B, root string, i int, image string) runtime.Spec {
	b.Helper()
	dir := filepath.Join(root, strconv.Itoa(i))
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		b.Fatal(err)
	}
	return runtime.Spec{
		LeaseID: 1<<41 + mrand.Uint64N(1<<40),
		Dir:     dir,
		WorkDir: work,
		LogPath: filepath.Join(dir, "log.txt"),
		Command: benchCommand,
		Image:   image,
	}
}

// waitFirstLine polls path every 200 µs until it holds a complete line.
func waitFirstLine(path string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if bytes.IndexByte(b, '\n') >= 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("no complete line in %s after %s: %q", path, timeout, b)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// removeLease removes whatever the engine still has of a lease (containers by label, its network) and says what
// there was ("" when nothing).
func removeLease(cli *client.Client, leaseID uint64) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var left string
	f := client.Filters{}
	f.Add("label", LabelLease+"="+strconv.FormatUint(leaseID, 10))
	if l, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range l.Items {
			left += " container " + c.ID
			_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	if _, err := cli.NetworkRemove(ctx, LeaseName(leaseID), client.NetworkRemoveOptions{}); err == nil {
		left += " network " + LeaseName(leaseID)
	}
	return left
}
