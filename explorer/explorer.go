// Package explorer runs the network explorer: an indexer following the chain into SQLite (package index) and
// the web server over it (package web). `spare explorer` and `spare dev` start it through Start.
package explorer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/web"
)

// Options configure an explorer.
type Options struct {
	Client *client.Client // the node to follow
	DB     string         // SQLite file of the index (created if missing)
	Listen string         // HTTP address, e.g. 127.0.0.1:8080 (":0" picks a port)
	Logger *slog.Logger
}

// Explorer is a running explorer.
type Explorer struct {
	URL string // where it serves, http://host:port

	db     *index.DB
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error
}

// Start opens the index, starts indexing and serving, and returns once the HTTP server listens.
func Start(ctx context.Context, o Options) (*Explorer, error) {
	if o.Client == nil {
		return nil, errors.New("explorer: no node client")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DB == "" {
		return nil, errors.New("explorer: --db is empty: give the SQLite file to keep the index in")
	}
	if err := os.MkdirAll(filepath.Dir(o.DB), 0o700); err != nil {
		return nil, fmt.Errorf("explorer: %w", err)
	}
	db, err := index.Open(o.DB)
	if err != nil {
		return nil, err
	}
	ix := index.New(db, o.Client, o.Logger.With("module", "indexer"))
	h, err := web.New(db, o.Client, ix, o.Logger.With("module", "explorer"))
	if err != nil {
		db.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("explorer: listen %s: %w (choose another address with --listen)", o.Listen, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	e := &Explorer{URL: "http://" + ln.Addr().String(), db: db, cancel: cancel, done: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
			BaseContext: func(net.Listener) context.Context { return runCtx }}} // Close ends the live streams too
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("explorer HTTP", "err", err)
		}
	}()
	go func() {
		err := ix.Run(runCtx)
		if err != nil && !errors.Is(err, context.Canceled) {
			o.Logger.Error("indexer stopped", "err", err)
		}
		e.done <- err
	}()
	return e, nil
}

// Done delivers the indexer's end: nil or context.Canceled after Close, the cause otherwise (another chain).
func (e *Explorer) Done() <-chan error { return e.done }

// Close stops indexing and serving.
func (e *Explorer) Close() error {
	e.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx) // SSE streams end when their requests' contexts do
	_ = e.srv.Close()
	err := <-e.done
	e.done <- err
	if cerr := e.db.Close(); cerr != nil {
		return cerr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
