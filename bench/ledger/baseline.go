package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strconv"

	"github.com/sparenet/spare/bench/kvbaseline"
)

// kvGen is one worker of the baseline: unique key=value payloads of 80 bytes signed with the worker's key.
type kvGen struct {
	id   int
	priv ed25519.PrivateKey
	seq  uint64
}

func newKVGen(id int) *kvGen {
	s := sha256.Sum256([]byte(fmt.Sprintf("bench/w%d/kv", id)))
	return &kvGen{id: id, priv: ed25519.NewKeyFromSeed(s[:])}
}

// payloadLen is the size of key=value: with the 96-byte header a baseline tx is 176 bytes.
const payloadLen = 80

func (g *kvGen) next() ([]byte, *op, bool) {
	g.seq++
	p := make([]byte, 0, payloadLen)
	p = fmt.Appendf(p, "bench/w%02d/%010d=", g.id, g.seq)
	v := strconv.AppendUint(nil, g.seq*2654435761, 16)
	for len(p) < payloadLen {
		p = append(p, v[len(p)%len(v)])
	}
	return kvbaseline.NewTx(g.priv, p), &op{kind: "kv"}, true
}

func (g *kvGen) acked(*op)            {}
func (g *kvGen) resync(*op)           {}
func (g *kvGen) badNonce(uint32) bool { return false }

func kvCodeName(c uint32) string {
	switch c {
	case kvbaseline.CodeOK:
		return "ok"
	case kvbaseline.CodeMalformed:
		return "malformed"
	case kvbaseline.CodeBadSignature:
		return "bad_signature"
	}
	return "code_" + strconv.FormatUint(uint64(c), 10)
}
