package provider

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/vault"
)

// The Vault's read API: anyone who knows a shard's root may read it (privacy comes from encrypting what is
// stored), as the verified-slice encoding that the reader checks against the root as it streams, or as the proof
// that one group is held. Nothing here writes: shards arrive once the ledger places them (not built yet).

// shardFor answers 404 or 400 unless this provider holds the shard the path names; it returns its root and size.
func (d *Daemon) shardFor(w http.ResponseWriter, r *http.Request) (tx.Hash, uint64, bool) {
	if d.shards == nil {
		reqsig.WriteError(w, http.StatusNotFound, "not_found", "this provider offers no storage")
		return tx.Hash{}, 0, false
	}
	root, ok := rootOf(r.PathValue("root"))
	if !ok {
		reqsig.WriteError(w, http.StatusBadRequest, "bad_request", "a shard is named by its root: 64 lowercase hex digits")
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
