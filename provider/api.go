package provider

import (
	"github.com/sparenet/spare/liveness"
	"log"
	"log/slog"
	"strings"

	"archive/tar"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/runtime"
)

// The tenant API. Every lease route is signed by the tenant's key (package reqsig) and authorized against the
// lease: a tenant sees only its own leases (403 otherwise). Errors are JSON {"error", "code"}.
//
//	PUT  /leases/{id}/manifest   the job; its SHA-256 must equal the order's manifest hash. A cluster member
//	                             of rank > 0 needs ?master_port= (what rank 0's answer gave)
//	GET  /leases/{id}/status     the lease as this provider sees it
//	GET  /leases/{id}/logs       the workload's output; ?follow=1 streams until it ends; ?format=jsonl: JSON
//	                             lines {time, stream, text} (&since=RFC3339-or-unix-ms, &tail=N; see logs.go)
//	GET  /leases/{id}/outputs    a tar of the output files (after the workload ended), with the receipt's root
//	POST /leases/{id}/stop       stop the workload; the lease completes with a receipt
//	POST /challenge              liveness: {"nonce": hex} -> the nonce signed with the provider key (no auth)
//	POST /proof                  proof of GPU: challenges -> roots and opened rows (signed by a ledger auditor)
//	GET  /offer                  free capacity and prices now, for `spare offers` (no auth)

// Status is the answer of GET /leases/{id}/status.
type Status struct {
	LeaseID     uint64          `json:"lease_id"`
	State       LeaseState      `json:"state"`
	Runtime     string          `json:"runtime,omitempty"`
	GPUs        []string        `json:"gpus,omitempty"`
	Result      *runtime.Result `json:"result,omitempty"`
	Receipt     *tx.Receipt     `json:"receipt,omitempty"`
	OutputFiles []merkle.File   `json:"output_files,omitempty"`
	// OutputsLeftOut: outputs the receipt does not cover, and why (links, over the lease's disk...).
	OutputsLeftOut []string `json:"outputs_left_out,omitempty"`
	Reason         string   `json:"reason,omitempty"`
	// A cluster member's rank and the rendezvous port (rank 0 gives it; the tenant passes it to the others).
	Rank       *int `json:"rank,omitempty"`
	MasterPort int  `json:"master_port,omitempty"`
	// Endpoints are where the job's declared ports are reachable: port -> host:port.
	Endpoints map[string]string `json:"endpoints,omitempty"`
	// ManifestAck (hex) is the provider's signature over tx.ManifestAckBytes(chain, lease, manifest hash), given
	// once it accepted the manifest and started the workload: sent on the ledger in ManifestDelivered, it makes a
	// lease not started by its deadline count against the provider.
	ManifestAck string `json:"manifest_ack,omitempty"`
}

// ChallengeRequest and ChallengeResponse are the liveness challenge's wire format (package liveness).
type (
	ChallengeRequest  = liveness.Request
	ChallengeResponse = liveness.Response
)

// maxManifest bounds PUT bodies (the manifest's own limit).
const maxManifest = manifest.MaxBytes

// manifestUploadsPerLease is how many manifest bodies of one lease may be received at once (a retry while the
// first is answered, not a pile of 16 MiB bodies).
const manifestUploadsPerLease = 2

// Handler returns the tenant API. Every signed route is authenticated from its headers, then authorized
// (the lease is the signer's; the signer is an auditor), and only then is its body read, up to the route's
// limit: a manifest's size on PUT /leases/{id}/manifest, nothing on the other lease routes, 64 KiB on
// POST /proof (see reqsig.Middleware). Serve it with NewServer, which adds the timeouts and connection caps.
func (d *Daemon) Handler(v *reqsig.Verifier) http.Handler {
	mux := http.NewServeMux()
	leaseID := func(r *http.Request) (uint64, error) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil || id == 0 {
			return 0, &reqsig.Error{Status: http.StatusBadRequest, Code: "bad_request", Msg: "lease id must be a positive number"}
		}
		return id, nil
	}
	// signersLease answers 400/404/403 before any body byte is read (the handlers check again: a lease's
	// state may change between the two).
	signersLease := func(r *http.Request, tenant tx.Address) (*LeaseRecord, error) {
		id, err := leaseID(r)
		if err != nil {
			return nil, err
		}
		switch l, err := d.lookup(tenant, id); {
		case err == nil:
			return l, nil
		case errors.Is(err, ErrLeaseNotFound):
			return nil, &reqsig.Error{Status: http.StatusNotFound, Code: "not_found", Msg: err.Error()}
		case errors.Is(err, ErrNotYourLease):
			return nil, &reqsig.Error{Status: http.StatusForbidden, Code: reqsig.CodeForbidden, Msg: "this lease belongs to another tenant"}
		default:
			d.log.Error("tenant API: lease lookup", "err", err)
			return nil, &reqsig.Error{Status: http.StatusInternalServerError, Code: reqsig.CodeInternal, Msg: "internal error"}
		}
	}
	ownsLease := func(r *http.Request, tenant tx.Address) error {
		_, err := signersLease(r, tenant)
		return err
	}
	// A manifest (up to 16 MiB) is read only for a lease of the signer's that still awaits it, and at most
	// manifestUploadsPerLease at once: a tenant cannot pile up manifest bodies in the daemon's memory.
	uploads := newKeyedLimit(manifestUploadsPerLease)
	awaitsManifest := func(r *http.Request, tenant tx.Address) error {
		l, err := signersLease(r, tenant)
		if err != nil {
			return err
		}
		if l.State != LeaseAwaitingManifest {
			return &reqsig.Error{Status: http.StatusConflict, Code: "bad_state",
				Msg: fmt.Sprintf("lease %d is %s: a lease takes its manifest once, while it awaits it", l.LeaseID, l.State)}
		}
		if !takeSlot(uploads, r, l.LeaseID) {
			return &reqsig.Error{Status: http.StatusTooManyRequests, Code: "busy",
				Msg: fmt.Sprintf("%d manifests for lease %d are being received already: wait for their answers", manifestUploadsPerLease, l.LeaseID)}
		}
		return nil
	}
	lease := func(maxBody int64, authorize reqsig.Authorize, h func(w http.ResponseWriter, r *http.Request, tenant tx.Address, id uint64, body []byte)) http.Handler {
		return v.Middleware(maxBody, authorize, func(w http.ResponseWriter, r *http.Request, tenant tx.Address, body []byte) {
			id, err := leaseID(r)
			if err != nil {
				reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "lease id must be a positive number")
				return
			}
			h(w, r, tenant, id, body)
		})
	}
	// The manifest's answer comes once its inputs are fetched: give the response that long to be written.
	putManifest := func(w http.ResponseWriter, r *http.Request, tenant tx.Address, id uint64, body []byte) {
		extendWriteDeadlineBy(w, r, d.inputOptions().Timeout)
		d.putManifest(w, r, tenant, id, body)
	}
	auditor := func(r *http.Request, signer tx.Address) error {
		if !d.isAuditor(r.Context(), signer) {
			return &reqsig.Error{Status: http.StatusForbidden, Code: reqsig.CodeForbidden, Msg: "only the ledger's auditors may send proof-of-GPU challenges"}
		}
		return nil
	}
	mux.Handle("PUT /leases/{id}/manifest", withSlot(uploads, lease(maxManifest, awaitsManifest, putManifest)))
	mux.Handle("GET /leases/{id}/status", lease(0, ownsLease, d.getStatus))
	mux.Handle("GET /leases/{id}/logs", lease(0, ownsLease, d.getLogs))
	mux.Handle("GET /leases/{id}/outputs", lease(0, ownsLease, d.getOutputs))
	mux.Handle("POST /leases/{id}/stop", lease(0, ownsLease, d.postStop))
	mux.HandleFunc("POST /challenge", d.postChallenge)
	mux.Handle("POST /proof", v.Middleware(1<<16, auditor, d.postProof))
	mux.HandleFunc("GET /offer", d.getOffer)
	mux.HandleFunc("GET /vault/shards/{root}", d.getShard)
	mux.HandleFunc("HEAD /vault/shards/{root}", d.headShard)
	mux.Handle("PUT /vault/shards/{root}", d.putShard(v))
	mux.HandleFunc("GET /vault/shards/{root}/proof", d.getShardProof)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reqsig.WriteError(w, http.StatusNotFound, "not_found", "no such route: see the provider API in docs/provider.md")
	})
	return mux
}

// writeErr maps daemon errors to statuses. Unexpected errors are logged and reported without detail.
func (d *Daemon) writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrLeaseNotFound):
		reqsig.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrNotYourLease):
		reqsig.WriteError(w, http.StatusForbidden, reqsig.CodeForbidden, "this lease belongs to another tenant")
	case errors.Is(err, ErrBadManifest):
		reqsig.WriteError(w, http.StatusBadRequest, "bad_manifest", err.Error())
	case errors.Is(err, ErrStartFailed):
		reqsig.WriteError(w, http.StatusServiceUnavailable, "start_failed", err.Error())
	case errors.Is(err, ErrLeaseState):
		reqsig.WriteError(w, http.StatusConflict, "bad_state", err.Error())
	default:
		d.log.Error("tenant API", "err", err)
		reqsig.WriteError(w, http.StatusInternalServerError, reqsig.CodeInternal, "internal error")
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (d *Daemon) putManifest(w http.ResponseWriter, r *http.Request, tenant tx.Address, id uint64, body []byte) {
	masterPort := 0
	if q := r.URL.Query().Get("master_port"); q != "" {
		p, err := strconv.Atoi(q)
		if err != nil || p < 1 || p > 65535 {
			reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "master_port "+strconv.Quote(q)+": a port 1..65535")
			return
		}
		masterPort = p
	}
	l, err := d.AcceptManifest(r.Context(), tenant, id, body, masterPort)
	if err != nil {
		d.log.Info("manifest refused", "lease", id, "err", err)
		d.writeErr(w, err)
		return
	}
	writeJSON(w, d.status(l))
}

func (d *Daemon) lookup(tenant tx.Address, id uint64) (*LeaseRecord, error) {
	return d.authorized(tenant, id)
}

func (d *Daemon) status(l *LeaseRecord) Status {
	return Status{LeaseID: l.LeaseID, State: l.State, Runtime: l.Runtime, GPUs: l.Reservation.GPUs, Result: l.Result,
		Receipt: l.Receipt, OutputFiles: l.OutputFiles, OutputsLeftOut: l.OutputsLeftOut, Reason: l.EndReason, Rank: l.Rank, MasterPort: l.MasterPort,
		Endpoints: d.endpoints(l), ManifestAck: hex.EncodeToString(l.ManifestAck)}
}

func (d *Daemon) getStatus(w http.ResponseWriter, r *http.Request, tenant tx.Address, id uint64, _ []byte) {
	l, err := d.lookup(tenant, id)
	if err != nil {
		d.writeErr(w, err)
		return
	}
	writeJSON(w, d.status(l))
}

// getLogs sends the log file from byte offset on (0: all); with follow it keeps sending what is appended until
// the workload has ended. At most limits.max_log_bytes of the log are sent, counted from its start (a stream
// resumed at an offset gets what the first one left), then a line saying so. The log is opened without following a link. With
// format=jsonl it answers lines with their times and streams instead (logs.go: getLogLines).
func (d *Daemon) getLogs(w http.ResponseWriter, r *http.Request, tenant tx.Address, id uint64, _ []byte) {
	if _, err := d.lookup(tenant, id); err != nil {
		d.writeErr(w, err)
		return
	}
	lq, err := parseLogQuery(r.URL.Query())
	if err != nil {
		writeBadQuery(w, err)
		return
	}
	logPath := filepath.Join(d.leaseDir(id), "log")
	if lq.lines {
		d.getLogLines(w, r, lq, logPath, func() bool {
			l, _ := d.lookup(tenant, id)
			return l == nil || l.State == LeaseDone || l.State == LeaseFinishing || l.State == LeaseRevealing
		})
		return
	}
	f, err := openLog(logPath)
	if err != nil && !os.IsNotExist(err) {
		d.writeErr(w, err)
		return
	}
	if f != nil && lq.offset > 0 {
		if _, err := f.Seek(lq.offset, io.SeekStart); err != nil {
			f.Close()
			d.writeErr(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set(LogOffsetHeader, strconv.FormatInt(lq.offset, 10)) // where the body starts: a resumed stream checks it
	follow := lq.follow
	flusher, _ := w.(http.Flusher)
	left := d.cfg.Limits.MaxLogBytes - min(lq.offset, d.cfg.Limits.MaxLogBytes)
	if left == 0 { // an earlier stream had all it may have, and the note: nothing to resume
		reqsig.WriteError(w, http.StatusRequestedRangeNotSatisfiable, LogLimitCode,
			fmt.Sprintf("the log was sent up to its limit of %d bytes (limits.max_log_bytes): nothing past it is kept for the tenant", d.cfg.Limits.MaxLogBytes))
		return
	}
	send := func(b []byte) bool {
		if int64(len(b)) > left {
			b = b[:left]
		}
		left -= int64(len(b))
		extendWriteDeadline(w, r) // a stream is cut only when the client stops reading (httpserver.go)
		if _, err := w.Write(b); err != nil {
			return false
		}
		if left == 0 {
			_, _ = fmt.Fprintf(w, "\n[spare: log truncated at %d bytes by the provider (limits.max_log_bytes)]\n", d.cfg.Limits.MaxLogBytes)
			return false
		}
		return true
	}
	drain := func() bool { // false: stop sending
		buf := make([]byte, 32<<10)
		for {
			n, rerr := f.Read(buf)
			if n > 0 && !send(buf[:n]) {
				return false
			}
			if rerr != nil {
				return true
			}
		}
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if f == nil { // the workload has not written anything yet
			f, _ = openLog(logPath)
			if f != nil && lq.offset > 0 {
				if _, err := f.Seek(lq.offset, io.SeekStart); err != nil {
					return
				}
			}
		}
		if f != nil {
			if !drain() {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if !follow {
			return
		}
		l, _ := d.lookup(tenant, id)
		if l == nil || l.State == LeaseDone || l.State == LeaseFinishing || l.State == LeaseRevealing {
			if f != nil { // what the workload wrote last
				drain()
			}
			return
		}
		// Nothing to write while the workload is quiet (or has ended and its lease is being settled): the write
		// timeout is for a client that stops reading, not for a workload that stops printing.
		extendWriteDeadline(w, r)
		select {
		case <-r.Context().Done():
			return
		case <-time.After(logPoll):
		}
	}
}

// logPoll is how often a followed log is read again: a workload's first line reaches the tenant within it.
const logPoll = 10 * time.Millisecond

// getOutputs streams the output files as a tar, in path order. The receipt's root is in a header, so the
// tenant can check what it received.
func (d *Daemon) getOutputs(w http.ResponseWriter, r *http.Request, tenant tx.Address, id uint64, _ []byte) {
	l, err := d.lookup(tenant, id)
	if err != nil {
		d.writeErr(w, err)
		return
	}
	if l.Receipt == nil {
		d.writeErr(w, errors.Join(ErrLeaseState, errors.New("outputs are ready once the workload has ended")))
		return
	}
	removed := errors.Join(ErrLeaseState, fmt.Errorf("the outputs were removed %s after the lease ended (this provider's limits.keep_lease_data)", d.cfg.Limits.KeepLeaseData.Duration))
	if l.Removed {
		d.writeErr(w, removed)
		return
	}
	t, err := openWorkTree(filepath.Join(d.leaseDir(id), "work"))
	if errors.Is(err, fs.ErrNotExist) && l.State == LeaseDone {
		d.writeErr(w, removed) // removed since the lookup: housekeeping holds the lease's lock, this read does not
		return
	}
	if err != nil {
		d.writeErr(w, err)
		return
	}
	defer t.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("X-Spare-Output-Root", l.Receipt.OutputRoot.String())
	tw := tar.NewWriter(streamWriter(w, r)) // the write deadline extended before each write (httpserver.go)
	for _, f := range l.OutputFiles {
		// Opened beneath the work directory with no link followed, as when it was hashed.
		src, _, err := t.openFile(f.Path)
		if err != nil {
			return // the connection breaks; the tenant's root check fails loudly
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Path, Mode: 0o644, Size: f.Size, Typeflag: tar.TypeReg}); err != nil {
			src.Close()
			return
		}
		_, err = io.CopyN(tw, src, f.Size)
		src.Close()
		if err != nil {
			return
		}
	}
	_ = tw.Close()
}

func (d *Daemon) postStop(w http.ResponseWriter, r *http.Request, tenant tx.Address, id uint64, _ []byte) {
	if err := d.StopLease(r.Context(), tenant, id); err != nil {
		d.writeErr(w, err)
		return
	}
	writeJSON(w, map[string]any{"lease_id": id, "stopping": true})
}

func (d *Daemon) postChallenge(w http.ResponseWriter, r *http.Request) {
	var req ChallengeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "want {\"nonce\": \"<hex>\"}")
		return
	}
	nonce, err := hex.DecodeString(req.Nonce)
	if err != nil || len(nonce) < liveness.MinNonce || len(nonce) > liveness.MaxNonce {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "nonce: 16 to 64 bytes in hex")
		return
	}
	writeJSON(w, ChallengeResponse{Provider: d.Address(), PubKey: d.signer.PubKey(), Signature: d.sign(liveness.SignBytes(nonce))})
}

// Serve runs the tenant API over TLS on ln's address until ctx ends.
func Serve(ctx context.Context, srv *http.Server, certFile, keyFile string) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS(certFile, keyFile) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	case err := <-errc:
		return err
	}
}

// ServerErrorLog is the tenant API server's error log: connections that close before or during the TLS
// handshake (round-trip probes from tenants and other providers connect and close at once) at debug level,
// anything else as a warning.
func ServerErrorLog(l *slog.Logger) *log.Logger {
	return log.New(serverLogWriter{l}, "", 0)
}

type serverLogWriter struct{ l *slog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		w.l.Debug("tenant API", "err", msg)
	} else {
		w.l.Warn("tenant API", "err", msg)
	}
	return len(p), nil
}
