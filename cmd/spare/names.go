package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Job names. A job file's `name:` stays on this machine — the ledger holds no names (a name may say more than a
// tenant wants public) — in HOME/job-names.json, order id -> name, written by deploy and read by the lists.
const namesFile = "job-names.json"

// maxNames bounds the file: the most recent orders keep their names.
const maxNames = 2000

func (g *globals) jobNames() map[uint64]string {
	out := map[uint64]string{}
	b, err := os.ReadFile(filepath.Join(g.home, namesFile))
	if err != nil {
		return out
	}
	var raw map[string]string
	if json.Unmarshal(b, &raw) != nil {
		return out
	}
	for k, v := range raw {
		if id, err := strconv.ParseUint(k, 10, 64); err == nil && len(v) <= 256 {
			out[id] = v
		}
	}
	return out
}

// rememberJobName records an order's job name; failing to is not worth failing a deploy for.
func (g *globals) rememberJobName(orderID uint64, name string) {
	if name == "" || orderID == 0 {
		return
	}
	names := g.jobNames()
	names[orderID] = name
	if len(names) > maxNames {
		ids := make([]uint64, 0, len(names))
		for id := range names {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids[:len(ids)-maxNames] {
			delete(names, id)
		}
	}
	raw := make(map[string]string, len(names))
	for id, n := range names {
		raw[strconv.FormatUint(id, 10)] = n
	}
	b, _ := json.MarshalIndent(raw, "", " ")
	path := filepath.Join(g.home, namesFile)
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, path) // whole or not at all
	}
}
