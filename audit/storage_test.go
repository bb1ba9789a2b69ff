package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
)

// testKey is an auditor key for tests that need no ledger.
type testKey struct{ priv ed25519.PrivateKey }

func newTestKey(seed byte) testKey {
	return testKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}
func (k testKey) Address() tx.Address            { return tx.AddressOf(k.PubKey()) }
func (k testKey) PubKey() ed25519.PublicKey      { return k.priv.Public().(ed25519.PublicKey) }
func (k testKey) Sign(msg []byte) []byte         { return ed25519.Sign(k.priv, msg) }
func (k testKey) PrivateKey() ed25519.PrivateKey { return k.priv }

// offlineAuditor is an auditor whose node is never asked (tests replace what it would be asked).
func offlineAuditor(t *testing.T, seed byte) *Auditor {
	t.Helper()
	c, err := client.New("http://127.0.0.1:1", client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return NewAuditor(c, newTestKey(seed), slog.New(slog.DiscardHandler))
}

// testShard is a shard a fake provider holds: its bytes, root and outboard.
type testShard struct {
	data     []byte
	root     tx.Hash
	outboard []byte
}

func newTestShard(t *testing.T, seed uint64, size int) testShard {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	root, ob, err := vault.Outboard(bytes.NewReader(b), uint64(size))
	if err != nil {
		t.Fatal(err)
	}
	return testShard{b, root, ob}
}

func (s testShard) prove(t *testing.T, group uint64) []byte {
	t.Helper()
	p, err := vault.Prove(bytes.NewReader(s.data), s.outboard, uint64(len(s.data)), group)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// proofServer is a provider's pinned TLS endpoint answering proofs with h.
func proofServer(t *testing.T, h http.HandlerFunc) (host string, fp tx.Hash) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, certs.Fingerprint(srv.Certificate().Raw)
}

// groupOf reads the group a proof request asks for.
func groupOf(r *http.Request) uint64 {
	g, _ := strconv.ParseUint(r.URL.Query().Get("group"), 10, 64)
	return g
}

// TestProveShardRefusesHostileProviders: a provider answering the proof of the challenged group passes; every
// other answer — another group's proof, another shard's, a bit flipped, cut short, too long (declared, or
// streamed without end), stalling before or in the body, trickling, an error status, a redirect to an honest
// copy, a certificate other than the pinned one — fails, each within the timeout and reading no more than a
// proof.
func TestProveShardRefusesHostileProviders(t *testing.T) {
	const size = 32 * vault.GroupSize // 16 groups: a proof carries parent nodes
	sh := newTestShard(t, 1, size)
	other := newTestShard(t, 2, size)
	const group = 5
	good := sh.prove(t, group)
	// Honest copies of the shard elsewhere, for the redirect.
	honest, _ := proofServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(sh.prove(t, groupOf(r))) })
	// httptest's servers share one certificate: any other fingerprint is another certificate.
	otherFP := tx.Hash{0xee}

	const timeout = 1500 * time.Millisecond
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 1
	cases := []struct {
		name    string
		handler http.HandlerFunc
		wrongFP bool
		pass    bool
	}{
		{name: "valid", pass: true, handler: func(w http.ResponseWriter, r *http.Request) {
			want := "/vault/shards/" + hex.EncodeToString(sh.root[:]) + "/proof"
			if r.URL.Path != want || groupOf(r) != group || r.Method != http.MethodGet {
				http.NotFound(w, r)
				return
			}
			w.Write(sh.prove(t, groupOf(r)))
		}},
		{name: "another group", handler: func(w http.ResponseWriter, r *http.Request) { w.Write(sh.prove(t, groupOf(r)+1)) }},
		{name: "group 0", handler: func(w http.ResponseWriter, r *http.Request) { w.Write(sh.prove(t, 0)) }},
		{name: "another shard", handler: func(w http.ResponseWriter, r *http.Request) { w.Write(other.prove(t, groupOf(r))) }},
		{name: "a bit flipped", handler: func(w http.ResponseWriter, r *http.Request) { w.Write(flipped) }},
		{name: "truncated", handler: func(w http.ResponseWriter, r *http.Request) { w.Write(good[:len(good)-100]) }},
		{name: "one byte more", handler: func(w http.ResponseWriter, r *http.Request) { w.Write(append(slices.Clone(good), 0)) }},
		{name: "empty", handler: func(w http.ResponseWriter, r *http.Request) {}},
		{name: "huge, declared", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			w.Write(good)
			w.Write(make([]byte, 1<<20))
		}},
		{name: "endless", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write(good)
			buf := make([]byte, 64<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}},
		{name: "stalls before answering", handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{name: "stalls mid-body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(good)))
			w.Write(good[:len(good)/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
		{name: "trickles", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(good)))
			for i := range good {
				if _, err := w.Write(good[i : i+1]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}},
		{name: "404", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "not held", http.StatusNotFound) }},
		{name: "500 with the proof", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(good)
		}},
		{name: "redirect to an honest copy", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, honest+r.URL.RequestURI(), http.StatusFound)
		}},
		{name: "another certificate", wrongFP: true, handler: func(w http.ResponseWriter, r *http.Request) { w.Write(good) }},
	}
	a := offlineAuditor(t, 1)
	a.StorageTimeout = timeout
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host, fp := proofServer(t, tc.handler)
			if tc.wrongFP {
				fp = otherFP
			}
			hc := a.proofClient(fp)
			defer hc.CloseIdleConnections()
			s := &shardCheck{ref: tx.ShardRef{Object: 1, Ordinal: 2}, root: sh.root, size: size, group: group}
			start := time.Now()
			err, _ := a.proveShard(context.Background(), hc, host, s)
			took := time.Since(start)
			if (err == nil) != tc.pass {
				t.Fatalf("passed %v, want %v (err %v)", err == nil, tc.pass, err)
			}
			// Bounded: the timeout, and generous slack for a loaded machine.
			if took > timeout+20*time.Second {
				t.Fatalf("took %v with a %v timeout", took, timeout)
			}
			t.Logf("%v in %v", err, took.Round(time.Millisecond))
		})
	}
}

// TestProveShardRefusesBadChallenges: a challenge that cannot be proven (a group past the shard, a shard size
// that is not whole groups, a host that is not https) fails without a fetch.
func TestProveShardRefusesBadChallenges(t *testing.T) {
	a := offlineAuditor(t, 1)
	var asked atomic.Int64
	host, fp := proofServer(t, func(http.ResponseWriter, *http.Request) { asked.Add(1) })
	hc := a.proofClient(fp)
	for _, s := range []struct {
		host        string
		size, group uint64
	}{
		{host, 4 * vault.GroupSize, 4},
		{host, 4*vault.GroupSize + 1, 0},
		{host, 0, 0},
		{host, vault.MaxShardSize + vault.GroupSize, 0},
		{strings.Replace(host, "https", "http", 1), 4 * vault.GroupSize, 0},
		{"", 4 * vault.GroupSize, 0},
	} {
		if err, _ := a.proveShard(context.Background(), hc, s.host, &shardCheck{size: s.size, group: s.group}); err == nil {
			t.Errorf("%+v passed", s)
		}
	}
	if asked.Load() != 0 {
		t.Fatalf("%d fetches for challenges that cannot be proven", asked.Load())
	}
}

// TestFailedList: the failed shards are named strictly increasing by (object, ordinal), each once, in
// AttestStorage of at most tx.MaxFailedShards — full lists but the last, each after the one before — that the
// ledger's own check takes; none failed is one empty attestation.
func TestFailedList(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var refs []tx.ShardRef
	for range 5000 {
		refs = append(refs, tx.ShardRef{Object: rng.Uint64N(100), Ordinal: rng.Uint32N(100)})
	}
	refs = append(refs, refs[:200]...) // duplicates
	all := map[tx.ShardRef]bool{}
	for _, r := range refs {
		all[r] = true
	}
	out := failedList(refs)
	if len(out) != len(all) {
		t.Fatalf("%d shards named, want %d", len(out), len(all))
	}
	for i := 1; i < len(out); i++ {
		if !out[i-1].Less(out[i]) {
			t.Fatalf("named %v after %v", out[i], out[i-1])
		}
	}
	chunks := failedChunks(out)
	if want := (len(out) + tx.MaxFailedShards - 1) / tx.MaxFailedShards; len(chunks) != want {
		t.Fatalf("%d attestations for %d shards, want %d", len(chunks), len(out), want)
	}
	var joined []tx.ShardRef
	for i, c := range chunks {
		if i < len(chunks)-1 && len(c) != tx.MaxFailedShards || len(c) == 0 || len(c) > tx.MaxFailedShards {
			t.Fatalf("attestation %d of %d names %d shards", i, len(chunks), len(c))
		}
		if err := (&tx.AttestStorage{Epoch: 3, Failed: c}).ValidateBasic(); err != nil {
			t.Fatal(err)
		}
		joined = append(joined, c...)
	}
	if !slices.Equal(joined, out) {
		t.Fatal("the attestations do not name every failed shard in order")
	}
	if c := failedChunks(out[:2*tx.MaxFailedShards]); len(c) != 2 {
		t.Fatalf("two full lists made %d attestations", len(c))
	}
	if c := failedChunks(nil); len(c) != 1 || len(c[0]) != 0 {
		t.Fatalf("none failed: %v", c)
	}
}

// TestStorageEpoch plays a whole epoch against four providers: an honest one; one that lost some shards
// (404) and serves another's bytes for one; one that fails a shard's first fetch and proves it at the recheck;
// a dead one holding 1,200 shards; and one that stalls every fetch. Exactly the lost, forged, dead and stalled
// shards are named, in order, in two AttestStorage (a full list of tx.MaxFailedShards, then the rest); the dead
// and stalled providers cost a few timeouts, not one per shard.
func TestStorageEpoch(t *testing.T) {
	const size = 8 * vault.GroupSize
	a := offlineAuditor(t, 1)
	a.StorageTimeout = 2 * time.Second
	a.StorageConcurrency = 8
	seed := tx.Hash{9}
	shards := map[tx.Hash]testShard{}
	var challenges []api.VaultChallenge
	var wantFailed []tx.ShardRef
	add := func(p tx.Address, host string, fp tx.Hash, object uint64, ordinal uint32, sh testShard, fails bool) {
		shards[sh.root] = sh
		challenges = append(challenges, api.VaultChallenge{Object: object, Ordinal: ordinal, Root: sh.root, ShardSize: size,
			Group: api.ChallengeGroup(seed, sh.root, object, ordinal, size), Provider: p, HostURI: host, Fingerprint: fp})
		if fails {
			wantFailed = append(wantFailed, tx.ShardRef{Object: object, Ordinal: ordinal})
		}
	}
	serve := func(lost map[tx.Hash]bool, forged map[tx.Hash]tx.Hash) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			parts := strings.Split(r.URL.Path, "/") // /vault/shards/ROOT/proof
			var root tx.Hash
			if len(parts) != 5 || len(parts[3]) != 64 || func() error { _, err := hex.Decode(root[:], []byte(parts[3])); return err }() != nil {
				http.NotFound(w, r)
				return
			}
			if f, ok := forged[root]; ok {
				root = f
			}
			sh, ok := shards[root]
			if !ok || lost[root] {
				http.Error(w, "this provider does not hold that shard", http.StatusNotFound)
				return
			}
			w.Write(sh.prove(t, groupOf(r)))
		}
	}
	ord := uint32(0)
	next := func() uint32 { ord++; return ord }
	// Honest.
	hHost, hFP := proofServer(t, serve(nil, nil))
	honest := tx.Address{1}
	for i := range 6 {
		add(honest, hHost, hFP, 10, next(), newTestShard(t, uint64(100+i), size), false)
	}
	// Lost two shards, forges a third with another shard's proof.
	lost, forged := map[tx.Hash]bool{}, map[tx.Hash]tx.Hash{}
	lHost, lFP := proofServer(t, serve(lost, forged))
	lossy := tx.Address{2}
	for i := range 5 {
		sh := newTestShard(t, uint64(200+i), size)
		switch i {
		case 1, 3:
			lost[sh.root] = true
		case 4:
			forged[sh.root] = challenges[0].Root
		}
		add(lossy, lHost, lFP, 11, next(), sh, i == 1 || i == 3 || i == 4)
	}
	// Flaky: the first fetch of each shard fails.
	var seen sync.Map
	fHost, fFP := proofServer(t, func(w http.ResponseWriter, r *http.Request) {
		if _, again := seen.LoadOrStore(r.URL.Path, true); !again {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		serve(nil, nil)(w, r)
	})
	flaky := tx.Address{3}
	for i := range 3 {
		add(flaky, fHost, fFP, 12, next(), newTestShard(t, uint64(300+i), size), false)
	}
	// Dead: nothing listens at its host.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadHost := "https://" + ln.Addr().String()
	ln.Close()
	dead := tx.Address{4}
	deadShard := newTestShard(t, 400, size)
	for i := range 1200 {
		add(dead, deadHost, tx.Hash{4}, uint64(5+i/600), uint32(i%600), deadShard, true)
	}
	// Stalling: accepts and never answers.
	var stalled atomic.Int64
	sHost, sFP := proofServer(t, func(w http.ResponseWriter, r *http.Request) {
		stalled.Add(1)
		<-r.Context().Done()
	})
	staller := tx.Address{5}
	for i := range 40 {
		add(staller, sHost, sFP, 13, next(), newTestShard(t, uint64(500+i), size), true)
	}
	// The ledger orders challenges by (object, ordinal); the auditor must not rely on it for Failed.
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(challenges), func(i, j int) { challenges[i], challenges[j] = challenges[j], challenges[i] })

	var sent []*tx.AttestStorage
	var mu sync.Mutex
	full := false // the ledger's rule: another attestation only after a full list, naming shards after it
	a.store.challenges = func(_ context.Context, epoch uint64, each func([]api.VaultChallenge) error) error {
		if epoch != 7 {
			return fmt.Errorf("epoch %d asked", epoch)
		}
		for page := range slices.Chunk(challenges, 100) {
			if err := each(page); err != nil {
				return err
			}
		}
		return nil
	}
	a.store.send = func(_ context.Context, m tx.Msg) (*client.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		at, ok := m.(*tx.AttestStorage)
		if !ok {
			return nil, fmt.Errorf("sent %T", m)
		}
		if err := at.ValidateBasic(); err != nil {
			return nil, err
		}
		if len(sent) > 0 && (!full || len(at.Failed) == 0 || !sent[len(sent)-1].Failed[tx.MaxFailedShards-1].Less(at.Failed[0])) {
			return nil, tx.Errorf(tx.CodeDuplicateAttest, "attested already")
		}
		full = len(at.Failed) == tx.MaxFailedShards
		sent = append(sent, at)
		return &client.Result{Hash: "AB", Height: 100}, nil
	}
	// A window of 18 s: the recheck 6 s in, the checks over by 13.5 s at the latest (they end sooner).
	start := time.Now()
	a.storageEpoch(context.Background(), api.VaultEpoch{Epoch: 7, Seed: seed}, 18*time.Second)
	took := time.Since(start)

	// 1,243 failed: a full list, then the rest.
	if len(sent) != 2 || len(sent[0].Failed) != tx.MaxFailedShards {
		t.Fatalf("%d AttestStorage sent, want a full one and one more", len(sent))
	}
	want := failedList(wantFailed)
	if got := append(slices.Clone(sent[0].Failed), sent[1].Failed...); !slices.Equal(got, want) {
		t.Fatalf("named %d failed shards, want %d:\n got %v\nwant %v", len(got), len(want), head(got), head(want))
	}
	res := a.Storage()
	if len(res) != 1 || res[0].FailedTotal != len(wantFailed) || res[0].Unchecked != 0 || res[0].Shards != len(challenges) ||
		res[0].Providers != 5 || res[0].TxHash != "AB" || res[0].Txs != 2 || !slices.Equal(res[0].Failed, want[:tx.MaxFailedShards]) {
		t.Fatalf("result %+v (failed %d of %d)", res, len(wantFailed), len(challenges))
	}
	// The staller held at most storagePerProvider fetches at once, one after its first went unanswered, and
	// was given up after storageStrikes: 4 requests a pass (twice), a few more when the HTTP transport retries
	// one on a closed connection (a loaded machine) — far fewer than its 40 shards.
	if n := stalled.Load(); n > 16 {
		t.Fatalf("the stalling provider was asked %d times", n)
	}
	t.Logf("epoch checked in %v; the staller asked %d times", took.Round(time.Millisecond), stalled.Load())
}

func head(r []tx.ShardRef) []tx.ShardRef { return r[:min(len(r), 8)] }

// fakeBeaconLedger plays the ledger's beacon rules for one auditor: one beacon an epoch; the reveal must open
// the commitment that landed in the epoch before, or be zero when none did.
type fakeBeaconLedger struct {
	t           *testing.T
	epoch       uint64
	epochBlocks uint64
	commits     map[uint64]tx.Hash // by the epoch it landed in
	reveals     map[uint64]tx.Hash
	file        string // where the auditor keeps its secrets: checked before every commitment lands
	// The next send: lost lands it and loses the answer; fail loses it before the node.
	lost, fail bool
	sends      int
}

func (l *fakeBeaconLedger) send(_ context.Context, m tx.Msg) (*client.Result, error) {
	b, ok := m.(*tx.AuditorBeacon)
	if !ok {
		return nil, fmt.Errorf("sent %T", m)
	}
	l.sends++
	if l.fail {
		l.fail = false
		return nil, errors.New("connection reset by peer")
	}
	if _, dup := l.commits[l.epoch]; dup {
		return nil, tx.Errorf(tx.CodeDuplicateAttest, "a beacon of this auditor is in epoch %d already", l.epoch)
	}
	if prev, ok := l.commits[l.epoch-1]; ok != !b.Reveal.IsZero() || ok && tx.BeaconCommit(b.Reveal) != prev {
		return nil, tx.Errorf(tx.CodeInvalidMsg, "reveal does not open the commitment of epoch %d", l.epoch-1)
	}
	// The secret is on disk before its commitment is out.
	if l.file != "" {
		raw, err := os.ReadFile(l.file)
		var recs []beaconRecord
		if err != nil || json.Unmarshal(raw, &recs) != nil ||
			!slices.ContainsFunc(recs, func(r beaconRecord) bool { return tx.BeaconCommit(r.Secret) == b.Commit }) {
			l.t.Errorf("commitment sent before its secret was kept: %v", err)
		}
	}
	l.commits[l.epoch] = b.Commit
	l.reveals[l.epoch] = b.Reveal
	if l.lost {
		l.lost = false
		return nil, context.DeadlineExceeded
	}
	return &client.Result{Hash: "B", Height: int64(l.epoch*l.epochBlocks + 2)}, nil
}

// TestBeaconSurvivesRestarts: an auditor restarted with its state directory reveals the secret it committed
// the epoch before — when it saw its beacon land, when the answer was lost though it landed, and reveals
// nothing (zero) when the beacon never reached the ledger; a second beacon in an epoch is not sent.
func TestBeaconSurvivesRestarts(t *testing.T) {
	const eb = 10
	dir := t.TempDir()
	l := &fakeBeaconLedger{t: t, epochBlocks: eb, commits: map[uint64]tx.Hash{}, reveals: map[uint64]tx.Hash{}}
	auditor := func() *Auditor { // a fresh process with the same key and state directory
		a := offlineAuditor(t, 2)
		a.StateDir = dir
		a.store.send = l.send
		l.file = a.beaconFile()
		return a
	}
	ctx := context.Background()
	step := func(a *Auditor, epoch uint64, wantErr bool) {
		t.Helper()
		l.epoch = epoch
		if err := a.beacon(ctx, epoch, eb); (err != nil) != wantErr {
			t.Fatalf("epoch %d: beacon error %v, want an error: %v", epoch, err, wantErr)
		}
	}
	opens := func(epoch uint64) {
		t.Helper()
		if r := l.reveals[epoch]; r.IsZero() || tx.BeaconCommit(r) != l.commits[epoch-1] {
			t.Fatalf("epoch %d revealed %v, not the secret of epoch %d's commitment", epoch, r, epoch-1)
		}
	}

	a := auditor()
	step(a, 5, false)
	if !l.reveals[5].IsZero() {
		t.Fatal("a first beacon revealed a secret")
	}
	if bs := a.Beacons(); len(bs) != 1 || bs[0].Epoch != 5 || bs[0].Commit != l.commits[5] {
		t.Fatalf("beacons %+v", bs)
	}
	// Restarted: the secret of epoch 5 is revealed in 6.
	a = auditor()
	step(a, 6, false)
	opens(6)
	// Again within epoch 6: no second beacon.
	sends := l.sends
	a = auditor()
	step(a, 6, false)
	if l.sends != sends {
		t.Fatal("a second beacon sent in epoch 6 after a restart")
	}

	// Epoch 7: it lands, the answer is lost, the process dies. Restarted in 7, its new beacon is refused with
	// every reveal (one is there already); in 8 it reveals 7's secret.
	l.lost = true
	step(auditor(), 7, true)
	a = auditor()
	step(a, 7, true)
	a = auditor()
	step(a, 8, false)
	opens(8)

	// Epoch 9: the beacon never reaches the ledger. In 10 the kept secret is refused and zero goes out.
	l.fail = true
	step(auditor(), 9, true)
	a = auditor()
	step(a, 10, false)
	if !l.reveals[10].IsZero() {
		t.Fatal("revealed a secret whose commitment never landed")
	}
	// And on: 11 opens 10.
	step(a, 11, false)
	opens(11)

	// Only the last few secrets are kept, and privately.
	fi, err := os.Stat(filepath.Join(dir, "beacon-"+a.addr.String()+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("beacon secrets readable by others: %v", fi.Mode())
	}
	a.mu.Lock()
	recs, _ := a.beaconRecords()
	a.mu.Unlock()
	if len(recs) > beaconKeep || len(recs) == 0 {
		t.Fatalf("%d secrets kept", len(recs))
	}
}
