package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/sparenet/spare/runtime"
)

// state is what State returns and Reattach reads.
type state struct {
	ContainerID string    `json:"container_id"`
	Name        string    `json:"name"`
	NetworkID   string    `json:"network_id,omitempty"`
	NetworkName string    `json:"network_name,omitempty"`
	Deadline    time.Time `json:"deadline,omitzero"`
	Log         cursor    `json:"log"`
}

// Why the runtime asked the container to stop (the content of the stop file).
const (
	reasonStopped = "stopped"
	reasonTimeout = "timeout"
)

type workload struct {
	r    *Runtime
	cli  *client.Client
	spec runtime.Spec

	mu     sync.Mutex
	st     state
	reason string // reasonStopped or reasonTimeout once asked to stop

	logDone chan struct{}
	done    chan struct{} // closed once res/err are set
	res     runtime.Result
	err     error
}

// newWorkload follows a started container: its logs and its end.
func (r *Runtime) newWorkload(cli *client.Client, s runtime.Spec, st state, reason string) (*workload, error) {
	w := &workload{r: r, cli: cli, spec: s, st: st, reason: reason,
		logDone: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errClosed
	}
	r.workloads.Add(2)
	r.mu.Unlock()
	go w.copyLogs()
	go w.watch()
	return w, nil
}

// finishedWorkload is a workload whose result was saved before its container was removed.
func (r *Runtime) finishedWorkload(cli *client.Client, s runtime.Spec, st state, res runtime.Result) *workload {
	w := &workload{r: r, cli: cli, spec: s, st: st, res: res,
		logDone: make(chan struct{}), done: make(chan struct{})}
	close(w.logDone)
	close(w.done)
	return w
}

func (w *workload) path(name string) string { return filepath.Join(w.spec.Dir, name) }

// State is the JSON of the container's and network's identities, the deadline and the log cursor.
func (w *workload) State() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, _ := json.Marshal(w.st)
	return b
}

// Wait returns how the workload ended, once it did.
func (w *workload) Wait(ctx context.Context) (runtime.Result, error) {
	select {
	case <-w.done:
		return w.res, w.err
	case <-ctx.Done():
		return runtime.Result{}, ctx.Err()
	}
}

// Stop stops the container (SIGTERM, SIGKILL after the grace period); the result, cleanup included, follows in
// Wait. Once the workload has ended, Stop only (re)does the cleanup: it is idempotent.
func (w *workload) Stop(ctx context.Context) error {
	select {
	case <-w.done:
		if w.err != nil {
			return w.err
		}
		return w.cleanup(ctx)
	default:
	}
	return w.stop(ctx, reasonStopped)
}

func (w *workload) stop(ctx context.Context, reason string) error {
	w.mu.Lock()
	id := w.st.ContainerID
	w.mu.Unlock()
	c, err := w.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) || (err == nil && !alive(c.Container.State)) {
		return nil // it ended by itself: not stopped by us
	}
	w.mu.Lock()
	if w.reason == "" {
		w.reason = reason
		// Recorded before the signal, so that a daemon that dies now still reports why the container ended.
		if err := os.WriteFile(w.path(stopFile), []byte(reason), 0o644); err != nil {
			w.mu.Unlock()
			return fmt.Errorf("docker: %w", err)
		}
	}
	w.mu.Unlock()
	secs := w.r.stopSeconds()
	_, err = w.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: stop container %s: %w", id, err)
	}
	return nil
}

// cleanup removes the container and the network. Both may already be gone.
func (w *workload) cleanup(ctx context.Context) error {
	w.mu.Lock()
	st := w.st
	w.mu.Unlock()
	ref := st.ContainerID
	if ref == "" {
		ref = st.Name
	}
	var errs []error
	if ref != "" {
		_, err := w.cli.ContainerRemove(ctx, ref, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("docker: remove container %s: %w", ref, err))
		}
	}
	if err := removeNetwork(ctx, w.cli, st.NetworkID, st.NetworkName); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// copyLogs copies the container's logs to LogPath until the container stops and its log is drained, or the
// Runtime is closed. It reconnects when the stream breaks while the container runs (an engine restart...).
func (w *workload) copyLogs() {
	defer w.r.workloads.Done()
	defer close(w.logDone)
	ctx := w.r.ctx
	w.mu.Lock()
	id, cur := w.st.ContainerID, w.st.Log
	w.mu.Unlock()
	lc := &logCopier{
		logPath:    w.spec.LogPath,
		cursorPath: w.path(cursorFile),
		margin:     defaultAnchorMargin,
		every:      defaultAnchorEvery,
		open: func(ctx context.Context, since int64) (io.ReadCloser, error) {
			opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true}
			if since != 0 {
				opts.Since = sinceParam(since)
			}
			return w.cli.ContainerLogs(ctx, id, opts)
		},
		published: func(c cursor) {
			w.mu.Lock()
			w.st.Log = c
			w.mu.Unlock()
		},
	}
	backoff := 100 * time.Millisecond
	for failedAfterEnd := 0; ; {
		var err error
		cur, err = lc.copyOnce(ctx, cur)
		if ctx.Err() != nil {
			return
		}
		c, ierr := w.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(ierr) {
			return
		}
		if ierr == nil && !alive(c.Container.State) {
			if err == nil {
				return // drained
			}
			if failedAfterEnd++; failedAfterEnd >= 3 {
				return // the result need not wait for a log that cannot be read
			}
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func alive(s *container.State) bool {
	return s != nil && (s.Running || s.Paused || s.Restarting)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// watch waits for the container to stop, stopping it at the deadline, then records the result and cleans up.
func (w *workload) watch() {
	defer w.r.workloads.Done()
	ctx := w.r.ctx
	w.mu.Lock()
	id, deadline := w.st.ContainerID, w.st.Deadline
	w.mu.Unlock()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	backoff := 100 * time.Millisecond
	for {
		wctx, cancel := context.WithCancel(ctx)
		wr := w.cli.ContainerWait(wctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		var werr error
		exited := false
		for !exited && werr == nil {
			select {
			case <-wr.Result:
				exited = true
			case werr = <-wr.Error:
			case <-timeout:
				timeout = nil
				// The wait goes on while the container is stopped; an error is retried by the next round.
				_ = w.stop(ctx, reasonTimeout)
			}
		}
		cancel()
		if exited {
			break
		}
		if ctx.Err() != nil {
			w.fail(errClosed)
			return
		}
		if cerrdefs.IsNotFound(werr) {
			_ = w.cleanup(context.WithoutCancel(ctx))
			w.fail(fmt.Errorf("docker: container %s was removed by someone else: %w", id, runtime.ErrGone))
			return
		}
		if !sleep(ctx, backoff) {
			w.fail(errClosed)
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	w.finish(ctx)
}

func (w *workload) fail(err error) {
	w.err = err
	close(w.done)
}

// finish records the result of the stopped container, then removes it.
func (w *workload) finish(ctx context.Context) {
	// The result waits for the log to be complete in LogPath (within reason).
	t := time.NewTimer(30 * time.Second)
	select {
	case <-w.logDone:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	var (
		c   client.ContainerInspectResult
		err error
	)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		c, err = w.cli.ContainerInspect(ctx, w.st.ContainerID, client.ContainerInspectOptions{})
		if err == nil || cerrdefs.IsNotFound(err) {
			break
		}
		if !sleep(ctx, backoff) {
			w.fail(errClosed)
			return
		}
	}
	if err != nil {
		w.fail(fmt.Errorf("docker: container %s was removed by someone else: %w", w.st.ContainerID, runtime.ErrGone))
		return
	}
	w.mu.Lock()
	reason := w.reason
	w.mu.Unlock()
	res := result(c.Container, reason, w.spec)
	if err := writeResult(w.path(resultFile), res); err != nil {
		// Without the saved result, the container is the only record: keep it for a later Reattach.
		w.fail(err)
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	_ = w.cleanup(cctx) // retried by Stop
	cancel()
	w.res = res
	close(w.done)
}

// result is how the container ended.
func result(c container.InspectResponse, reason string, s runtime.Spec) runtime.Result {
	var res runtime.Result
	st := c.State
	if st == nil {
		st = &container.State{}
	}
	res.ExitCode = st.ExitCode
	res.OOMKilled = st.OOMKilled
	res.StartedAt = parseTime(st.StartedAt)
	res.EndedAt = parseTime(st.FinishedAt)
	if res.EndedAt.Before(res.StartedAt) {
		// The engine records StartedAt once the start call returns: a workload that ends at once can seem to
		// have ended before it started.
		res.EndedAt = res.StartedAt
	}
	switch reason {
	case reasonTimeout:
		res.TimedOut = true
	case reasonStopped:
		res.Stopped = true
	}
	// The engine does not always flag a kernel OOM kill (seen here on cgroup v1): a container with a memory limit
	// killed by SIGKILL that neither the runtime's stop nor its time limit sent was killed for its memory.
	if !res.OOMKilled && s.MemoryBytes > 0 && st.ExitCode == 137 && reason == "" {
		res.OOMKilled = true
	}
	switch {
	case res.OOMKilled:
		res.Reason = fmt.Sprintf("killed for exceeding its memory limit (%d bytes), exit code %d", s.MemoryBytes, res.ExitCode)
		if s.MemoryBytes == 0 {
			res.Reason = fmt.Sprintf("killed: out of memory, exit code %d", res.ExitCode)
		}
	case res.TimedOut:
		res.Reason = fmt.Sprintf("duration reached (%s), exit code %d", runtime.DurationText(s.Timeout), res.ExitCode)
	case res.Stopped:
		res.Reason = fmt.Sprintf("stopped on request, exit code %d", res.ExitCode)
	case st.Error != "":
		res.Reason = fmt.Sprintf("exit code %d: %s", res.ExitCode, st.Error)
	default:
		res.Reason = fmt.Sprintf("exited with code %d", res.ExitCode)
	}
	return res
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

func writeResult(path string, res runtime.Result) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("docker: save result: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("docker: save result: %w", err)
	}
	return nil
}

func readResult(path string) (runtime.Result, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return runtime.Result{}, false, nil
	}
	if err != nil {
		return runtime.Result{}, false, fmt.Errorf("docker: saved result: %w", err)
	}
	var res runtime.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return runtime.Result{}, false, fmt.Errorf("docker: saved result %s: %w", path, err)
	}
	return res, true, nil
}
