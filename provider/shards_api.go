package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/vault"
)

// The Vault's shard API. Anyone who knows a shard's root may read it (privacy comes from encrypting what is
// stored), as the verified-slice encoding that the reader checks against the root as it streams, or as the proof
// that one group is held, and ask whether it is held (HEAD). A shard arrives by PUT, and only one the ledger
// placed on this provider, sent by the owner of an object it belongs to, exactly its size, hashing to its root.

// noStorage answers 503 on a provider that offers no storage.
func noStorage(w http.ResponseWriter, r *http.Request) {
	refuseUnread(w, r)
	reqsig.WriteError(w, http.StatusServiceUnavailable, "no_storage",
		"this provider offers no storage to Spare Vault (provider.toml has no [storage] section): it holds and takes no shards")
}

// rootParam reads the shard root the path names, answering 400 when it is not one.
func rootParam(w http.ResponseWriter, r *http.Request) (tx.Hash, bool) {
	root, ok := rootOf(r.PathValue("root"))
	if !ok {
		refuseUnread(w, r)
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "a shard is named by its root: 64 lowercase hex digits")
	}
	return root, ok
}

// shardFor answers 503, 400 or 404 unless this provider holds the shard the path names; it returns its root and
// size.
func (d *Daemon) shardFor(w http.ResponseWriter, r *http.Request) (tx.Hash, uint64, bool) {
	if d.shards == nil {
		noStorage(w, r)
		return tx.Hash{}, 0, false
	}
	root, ok := rootParam(w, r)
	if !ok {
		return tx.Hash{}, 0, false
	}
	size, held := d.shards.Has(root)
	if !held {
		reqsig.WriteError(w, http.StatusNotFound, "not_found", "this provider does not hold that shard")
		return tx.Hash{}, 0, false
	}
	return root, size, true
}

// uintParam reads a query parameter (def when absent), refusing anything but a decimal number.
func uintParam(w http.ResponseWriter, r *http.Request, name string, def uint64) (uint64, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", name+" must be a decimal number of bytes")
		return 0, false
	}
	return v, true
}

// getShard serves [offset, offset+length) of a shard (default: all of it) as its verified-slice encoding.
func (d *Daemon) getShard(w http.ResponseWriter, r *http.Request) {
	root, size, ok := d.shardFor(w, r)
	if !ok {
		return
	}
	off, ok := uintParam(w, r, "offset", 0)
	if !ok {
		return
	}
	if off > size {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "offset past the shard's end ("+strconv.FormatUint(size, 10)+" bytes)")
		return
	}
	n, ok := uintParam(w, r, "length", size-off)
	if !ok {
		return
	}
	if off%vault.GroupSize != 0 || n == 0 || n%vault.GroupSize != 0 || n > size-off {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "offset and length are whole 16384-byte groups within the shard ("+strconv.FormatUint(size, 10)+" bytes)")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatUint(vault.SliceSize(size, off, n), 10))
	// A large slice takes its time: at least 1 MiB/s, on top of the server's write timeout.
	extendWriteDeadlineBy(w, r, time.Duration(n>>20+1)*time.Second)
	if err := d.shards.Slice(w, root, off, n); err != nil {
		d.log.Warn("vault: serving a shard", "root", r.PathValue("root"), "err", err) // the reader sees it cut short
	}
}

// getShardProof serves the proof that group g of a shard is held.
func (d *Daemon) getShardProof(w http.ResponseWriter, r *http.Request) {
	root, size, ok := d.shardFor(w, r)
	if !ok {
		return
	}
	g, ok := uintParam(w, r, "group", 0)
	if !ok {
		return
	}
	if g >= size/vault.GroupSize {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "group past the shard's end ("+strconv.FormatUint(size/vault.GroupSize, 10)+" groups)")
		return
	}
	p, err := d.shards.Prove(root, g)
	if err != nil {
		d.log.Error("vault: proving a shard", "root", r.PathValue("root"), "err", err)
		reqsig.WriteError(w, http.StatusInternalServerError, reqsig.CodeInternal, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(p)
}

// headShard answers 200 when this provider holds the shard (its size in X-Spare-Shard-Size), 404 when not.
func (d *Daemon) headShard(w http.ResponseWriter, r *http.Request) {
	_, size, ok := d.shardFor(w, r)
	if !ok {
		return
	}
	w.Header().Set(ShardSizeHeader, strconv.FormatUint(size, 10))
	w.WriteHeader(http.StatusOK)
}

// ShardSizeHeader carries a held shard's size in bytes in the answer to HEAD /vault/shards/{root}.
const ShardSizeHeader = "X-Spare-Shard-Size"

// Shard uploads. Every one needs a shard the ledger placed here, so that nobody makes a provider hold what it is
// not paid for; its bytes stream to disk as they arrive, checked against the root (Shards.Put).
const (
	// shardUploads is how many shard bodies the daemon receives at once (each streams to disk; a shard is up
	// to 256 MiB).
	shardUploads = 4
	// shardUploadRate is the slowest a shard's bytes may arrive, in bytes a second: a shard of n bytes has the
	// server's read timeout plus n ÷ shardUploadRate seconds, and an uploader that trickles is cut off then.
	shardUploadRate = 1 << 20
	// maxPlacingObjects bounds the objects whose owners are looked up for one upload (in id order): a root
	// shared by many objects (zeros, a common file) costs the daemon no more than that many ledger queries.
	maxPlacingObjects = 64
)

// refuseUnread marks a refusal answered before the request's body was read: an HTTP/1 connection is closed after
// the answer, rather than net/http reading (and waiting for) up to 256 KiB of the refused body first. HTTP/2
// resets the stream instead.
func refuseUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// writeReqErr answers with a *reqsig.Error's status, code and message (500 for any other error).
func writeReqErr(w http.ResponseWriter, err error) {
	var e *reqsig.Error
	if !errors.As(err, &e) {
		e = &reqsig.Error{Status: http.StatusInternalServerError, Code: reqsig.CodeInternal, Msg: "internal error"}
	}
	switch e.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Spare-Ed25519 realm="spare"`)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	}
	reqsig.WriteError(w, e.Status, e.Code, e.Msg)
}

// placedFor is the size of the shard with root that the ledger placed on this provider for an object signer
// owns (committed state). Otherwise a *reqsig.Error: 404 when the ledger placed no shard with that root here,
// 403 when it did for others' objects only, 503 when the ledger does not answer.
func (d *Daemon) placedFor(ctx context.Context, root tx.Hash, signer tx.Address) (uint64, error) {
	unavailable := func(err error) error {
		d.log.Warn("vault: asking the ledger where a shard is placed", "root", root.String(), "err", err)
		return &reqsig.Error{Status: http.StatusServiceUnavailable, Code: "ledger_unavailable",
			Msg: "this provider could not ask the ledger whether it placed the shard here: retry shortly"}
	}
	held, err := d.c.VaultHeld(ctx, d.Address(), root)
	if err != nil {
		return 0, unavailable(err)
	}
	if len(held) == 0 {
		return 0, &reqsig.Error{Status: http.StatusNotFound, Code: "not_placed", Msg: fmt.Sprintf(
			"the ledger placed no shard with root %s on provider %s (a stored object's providers are drawn at the end of the block after its StoreObject): spare store status ROOT, with the object's root, shows where its shards went",
			root, d.Address())}
	}
	seen := map[uint64]bool{}
	var others []tx.Address
	for _, s := range held {
		if seen[s.ObjectID] {
			continue
		}
		if len(seen) == maxPlacingObjects {
			break
		}
		seen[s.ObjectID] = true
		o, err := d.c.VaultObject(ctx, s.ObjectID)
		if err != nil {
			return 0, unavailable(err)
		}
		if o.Owner == signer {
			return o.ShardSize, nil
		}
		if len(others) < 3 {
			others = append(others, o.Owner)
		}
	}
	return 0, &reqsig.Error{Status: http.StatusForbidden, Code: reqsig.CodeForbidden, Msg: fmt.Sprintf(
		"the ledger placed shard %s on provider %s for objects of %v, not of %s: only an object's owner uploads its shards, signed with the owner's key",
		root, d.Address(), others, signer)}
}

// putShard receives a shard the ledger placed here: PUT /vault/shards/{root}, signed (reqsig) by the owner of an
// object the ledger placed the shard for, with a body of exactly the object's shard size that hashes to root.
// Everything but the body is checked first — the signature, the placement, the owner, the length — and a refusal
// reads none of it. A shard already held answers 200 at once, its body unread, so that an interrupted upload is
// simply sent again; one stored answers 201.
func (d *Daemon) putShard(v *reqsig.Verifier) http.Handler {
	slots := &uploadSlots{max: shardUploads, roots: map[tx.Hash]bool{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.shards == nil {
			noStorage(w, r)
			return
		}
		root, ok := rootParam(w, r)
		if !ok {
			return
		}
		refuse := func(err error) {
			refuseUnread(w, r)
			writeReqErr(w, err)
		}
		signer, digest, err := v.VerifyHeaders(r)
		if err != nil {
			refuse(err)
			return
		}
		size, err := d.placedFor(r.Context(), root, signer)
		if err != nil {
			refuse(err)
			return
		}
		if _, held := d.shards.Has(root); held {
			refuseUnread(w, r)
			w.WriteHeader(http.StatusOK)
			return
		}
		switch {
		case r.ContentLength < 0:
			refuse(&reqsig.Error{Status: http.StatusLengthRequired, Code: "length_required",
				Msg: fmt.Sprintf("send the shard with its Content-Length: %d bytes", size)})
			return
		case uint64(r.ContentLength) != size:
			refuse(&reqsig.Error{Status: http.StatusBadRequest, Code: "bad_length",
				Msg: fmt.Sprintf("the shard is %d bytes (its object's shard size), the request says %d: send exactly the shard", size, r.ContentLength)})
			return
		}
		switch slots.take(root) {
		case slotsFull:
			refuse(&reqsig.Error{Status: http.StatusTooManyRequests, Code: "busy",
				Msg: fmt.Sprintf("this provider is receiving %d shards already: retry shortly", shardUploads)})
			return
		case slotSameRoot:
			refuse(&reqsig.Error{Status: http.StatusConflict, Code: "in_progress",
				Msg: "this shard is being received already: wait for that upload's answer (HEAD says whether it is held)"})
			return
		}
		defer slots.give(root)
		// The body's time: the server's read timeout, and a second a MiB on top. Past it, reads fail.
		wait := uploadTimeout(r, size)
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(wait)); err != nil {
			d.log.Warn("vault: a shard upload's read deadline", "err", err) // the server's own timeout still holds
		}
		extendWriteDeadlineBy(w, r, wait)
		body := &signedBody{r: r.Body, left: size, digest: digest, h: sha256.New()}
		err = d.shards.Put(root, size, body)
		if err == nil {
			w.WriteHeader(http.StatusCreated)
			return
		}
		if body.err != nil { // the body failed, whatever Put made of it
			var mismatch *reqsig.Error
			switch {
			case errors.As(body.err, &mismatch):
				writeReqErr(w, mismatch)
			case errors.Is(body.err, os.ErrDeadlineExceeded):
				reqsig.WriteError(w, http.StatusRequestTimeout, "too_slow", fmt.Sprintf(
					"the shard's %d bytes did not arrive within %s (at least %d KiB/s): the upload was cut off and nothing was kept; send it again",
					size, wait.Round(time.Second), shardUploadRate>>10))
			case errors.Is(body.err, io.ErrUnexpectedEOF):
				reqsig.WriteError(w, http.StatusBadRequest, reqsig.CodeBadBody, fmt.Sprintf(
					"the body ended after %d of the shard's %d bytes: nothing was kept; send it again", size-body.left, size))
			default: // the client went away, or reset the stream: it hears nothing more
				d.log.Info("vault: a shard upload ended", "root", r.PathValue("root"), "from", signer, "err", body.err)
				reqsig.WriteError(w, http.StatusBadRequest, reqsig.CodeBadBody, "the shard's body could not be read: nothing was kept; send it again")
			}
			return
		}
		var bad *vault.BadShardError
		switch {
		case errors.As(err, &bad):
			reqsig.WriteError(w, http.StatusBadRequest, "bad_shard", fmt.Sprintf(
				"these %d bytes do not hash to %s: they are not that shard, and nothing was kept", size, root))
		case errors.Is(err, ErrStorageFull): // refused before the body was read
			refuseUnread(w, r)
			reqsig.WriteError(w, http.StatusInsufficientStorage, "storage_full", err.Error())
		default:
			if _, held := d.shards.Has(root); held { // stored meanwhile by other means than this API
				w.WriteHeader(http.StatusOK)
				return
			}
			d.log.Error("vault: keeping a shard", "root", r.PathValue("root"), "err", err)
			refuseUnread(w, r)
			reqsig.WriteError(w, http.StatusInternalServerError, reqsig.CodeInternal, "internal error")
		}
	})
}

// uploadSlots bounds the shards received at once, one upload a root.
type uploadSlots struct {
	max   int
	mu    sync.Mutex
	roots map[tx.Hash]bool
}

const (
	slotTaken = iota
	slotsFull
	slotSameRoot
)

func (u *uploadSlots) take(root tx.Hash) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.roots[root]:
		return slotSameRoot
	case len(u.roots) >= u.max:
		return slotsFull
	}
	u.roots[root] = true
	return slotTaken
}

func (u *uploadSlots) give(root tx.Hash) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.roots, root)
}

// uploadTimeout is how long a shard of size bytes may take to arrive: the read timeout of the server serving r
// (DefaultReadTimeout without one), and a second a MiB.
func uploadTimeout(r *http.Request, size uint64) time.Duration {
	base := DefaultReadTimeout
	if srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server); srv != nil && srv.ReadTimeout > 0 {
		base = srv.ReadTimeout
	}
	return base + time.Duration(size/shardUploadRate)*time.Second
}

// signedBody reads a shard's body of left bytes, checking its SHA-256 against the signed digest as the last byte
// arrives: when they differ, the read that would end the body fails instead (400 body_mismatch), so that
// Shards.Put never sees the whole shard and keeps nothing. err is the body's first failure.
type signedBody struct {
	r      io.Reader
	left   uint64
	digest [32]byte
	h      hash.Hash
	err    error
}

func (b *signedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		return 0, io.EOF
	}
	if uint64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.left -= uint64(n)
	switch {
	case b.left == 0:
		var sum [32]byte
		if b.h.Sum(sum[:0]); sum != b.digest {
			b.err = &reqsig.Error{Status: http.StatusBadRequest, Code: reqsig.CodeBodyMismatch, Msg: fmt.Sprintf(
				"the body's SHA-256 differs from the signed %s header (the body was altered in transit, or signed over other bytes): nothing was kept", reqsig.HeaderBody)}
			return 0, b.err
		}
		return n, nil
	case err == io.EOF:
		b.err = io.ErrUnexpectedEOF
	case err != nil:
		b.err = err
	}
	return n, b.err
}
