package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/types"
)

// TestnetOptions describe a local multi-validator network made by InitTestnet.
type TestnetOptions struct {
	Validators  int           // >=1
	ChainID     string        // required
	BasePort    int           // node i uses RPC BasePort+2*i, P2P BasePort+2*i+1 on 127.0.0.1; default 26600
	BlockTime   time.Duration // default 100ms
	AppState    json.RawMessage
	GenesisTime time.Time // default now (UTC)
}

// InitTestnet writes dir/node0 .. dir/node{N-1}: each a full home with its own
// keys, one shared genesis listing all validators (equal power), and
// persistent_peers wiring every node to every other, with PEX off,
// addr_book_strict false and allow_duplicate_ip true. It returns the homes,
// each runnable with Start. It fails before writing anything if one of the
// homes already has a genesis.
func InitTestnet(dir string, opts TestnetOptions) ([]string, error) {
	if opts.Validators < 1 {
		return nil, fmt.Errorf("node: Validators is %d: a testnet needs at least 1 validator", opts.Validators)
	}
	if err := validateChainID(opts.ChainID); err != nil {
		return nil, err
	}
	if opts.BasePort == 0 {
		opts.BasePort = DefaultBasePort
	}
	if last := opts.BasePort + 2*opts.Validators - 1; opts.BasePort < 1 || last > 65535 {
		return nil, fmt.Errorf("node: BasePort %d: ports %d..%d must lie within 1..65535: pick another base port",
			opts.BasePort, opts.BasePort, last)
	}
	bt, err := blockTimeOrDefault(opts.BlockTime)
	if err != nil {
		return nil, err
	}
	if err := validateAppState(opts.AppState); err != nil {
		return nil, err
	}
	dir, err = absHome(dir)
	if err != nil {
		return nil, err
	}

	n := opts.Validators
	homes := make([]string, n)
	confs := make([]*cfg.Config, n)
	for i := range n {
		homes[i] = filepath.Join(dir, "node"+strconv.Itoa(i))
		rpc := "tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.BasePort+2*i))
		p2pAddr := "tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.BasePort+2*i+1))
		c := newConfig(homes[i], "node"+strconv.Itoa(i), bt, rpc, p2pAddr)
		c.P2P.PexReactor = false
		c.P2P.AddrBookStrict = false
		c.P2P.AllowDuplicateIP = true
		if err := refuseExistingGenesis(c); err != nil {
			return nil, err
		}
		confs[i] = c
	}

	vals := make([]types.GenesisValidator, n)
	peers := make([]string, n)
	for i, c := range confs {
		pv, nodeKey, err := writeHome(c)
		if err != nil {
			return nil, err
		}
		vals[i] = types.GenesisValidator{PubKey: pv.Key.PubKey, Power: ValidatorPower, Name: c.Moniker}
		peers[i] = string(nodeKey.ID()) + "@" + strings.TrimPrefix(c.P2P.ListenAddress, "tcp://")
	}

	gen := newGenesis(opts.ChainID, genesisTimeOrNow(opts.GenesisTime), opts.AppState, vals)
	for i, c := range confs {
		others := make([]string, 0, n-1)
		for j, p := range peers {
			if j != i {
				others = append(others, p)
			}
		}
		c.P2P.PersistentPeers = strings.Join(others, ",")
		if err := writeConfig(c); err != nil {
			return nil, err
		}
		if err := saveGenesis(gen, c.GenesisFile()); err != nil {
			return nil, err
		}
	}
	return homes, nil
}

var (
	freePortsMu   sync.Mutex
	freePortsNext = 20000 + rand.IntN(10000)
)

// FreePorts is a helper for tests: it returns a base port such that the 2*n
// consecutive loopback TCP ports base..base+2n-1 appear free. The ports are
// taken below Linux's ephemeral range (32768+) so outgoing connections do not
// grab them, and successive calls in one process return disjoint ranges.
func FreePorts(n int) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("node: FreePorts(%d): need n >= 1", n)
	}
	const lo, hi = 10000, 32000
	width := 2 * n
	if width > hi-lo {
		return 0, fmt.Errorf("node: FreePorts(%d): too many ports", n)
	}
	freePortsMu.Lock()
	defer freePortsMu.Unlock()
	for range 200 {
		base := freePortsNext
		if base+width > hi {
			base = lo + rand.IntN(hi-lo-width)
		}
		freePortsNext = base + width
		if portsFree(base, width) {
			return base, nil
		}
	}
	return 0, errors.New("node: FreePorts: found no free range of loopback ports")
}

func portsFree(base, width int) bool {
	ls := make([]net.Listener, 0, width)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for p := base; p < base+width; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ls = append(ls, l)
	}
	return true
}
