package provider

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// The tenant API faces the internet: anyone can open connections to it, and a client with no key must not be
// able to hold the daemon's memory or its connections. The server built here bounds what a connection may
// take before the request is authenticated (reqsig checks the signed headers before any body byte is read, and
// each route has its own body limit, see Handler):
//
//   - time: the request headers must arrive within ReadHeaderTimeout, the whole request (headers and body)
//     within ReadTimeout, and the response must be written within WriteTimeout; an idle keep-alive connection
//     is closed after IdleTimeout. Streaming responses (logs with follow, outputs) extend the write deadline
//     before each write (streamWriter), so they are cut only when the client stops reading.
//   - size: headers at most MaxHeaderBytes.
//   - connections: at most MaxConns open at once, and MaxConnsPerIP from one client address (an IPv6 client
//     counts per /64, the block one host usually holds); a connection past either cap is closed at once (with a
//     reset, so it costs no TIME_WAIT state) before any byte is read from it.

// Defaults of ServerLimits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 2 * time.Minute // headers and body: a 16 MiB manifest at ~1.1 Mbit/s
	DefaultWriteTimeout      = time.Minute     // per response; per write for streams
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerIP     = 256
)

// ServerLimits bound the tenant API server. A zero field takes its default (Default*).
type ServerLimits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxConns          int // open connections in total
	MaxConnsPerIP     int // open connections from one IPv4 address or IPv6 /64
}

func (l ServerLimits) withDefaults() ServerLimits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerIP <= 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	return l
}

// Server is the tenant API's http.Server with its connection caps: every Serve method wraps the listener in
// LimitListener. Set TLSConfig before serving, as on an http.Server.
type Server struct {
	*http.Server
	Limits ServerLimits // with the defaults filled in
}

// NewServer returns the tenant API server for handler (the daemon's Handler) with lim's timeouts and caps
// (zero fields: the defaults). errLog receives the server's errors and the refused connections (see
// ServerErrorLog).
func NewServer(handler http.Handler, errLog *log.Logger, lim ServerLimits) *Server {
	lim = lim.withDefaults()
	return &Server{Limits: lim, Server: &http.Server{
		Handler:           handler,
		ErrorLog:          errLog,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
	}}
}

func (s *Server) limit(ln net.Listener) net.Listener {
	return LimitListener(ln, s.Limits.MaxConns, s.Limits.MaxConnsPerIP, s.ErrorLog)
}

// Serve serves plain HTTP on ln, within the connection caps.
func (s *Server) Serve(ln net.Listener) error { return s.Server.Serve(s.limit(ln)) }

// ServeTLS serves HTTPS on ln, within the connection caps (certFile and keyFile may be empty when TLSConfig
// holds the certificate).
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	return s.Server.ServeTLS(s.limit(ln), certFile, keyFile)
}

// ListenAndServe listens on Addr and serves plain HTTP within the connection caps.
func (s *Server) ListenAndServe() error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// ListenAndServeTLS listens on Addr and serves HTTPS within the connection caps.
func (s *Server) ListenAndServeTLS(certFile, keyFile string) error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	return s.ServeTLS(ln, certFile, keyFile)
}

func (s *Server) listen() (net.Listener, error) {
	addr := s.Addr
	if addr == "" {
		addr = ":https"
		if s.TLSConfig == nil {
			addr = ":http"
		}
	}
	return net.Listen("tcp", addr)
}

// LimitListener wraps ln so that at most total connections are open at once, and at most perIP from one
// client (an IPv4 address, or an IPv6 /64). A connection past either cap is closed as soon as it is accepted,
// with a reset, and never reaches the server; errLog (if not nil) hears of refusals at most once a minute. A
// connection counts until it is closed.
func LimitListener(ln net.Listener, total, perIP int, errLog *log.Logger) net.Listener {
	return &limitListener{Listener: ln, total: max(total, 1), perIP: max(perIP, 1), byIP: map[netip.Prefix]int{}, log: errLog}
}

type limitListener struct {
	net.Listener
	total, perIP int
	log          *log.Logger

	mu       sync.Mutex
	open     int
	byIP     map[netip.Prefix]int
	refused  int // since the last log line
	lastLog  time.Time
	lastWhy  string
	lastFrom netip.Prefix
}

// clientKey is the unit a per-address cap counts: the IPv4 address, or the IPv6 /64.
func clientKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		if why := l.acquire(key); why != "" {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset: no TIME_WAIT kept for a refused connection
			}
			_ = c.Close()
			l.noteRefused(key, why)
			continue
		}
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) acquire(key netip.Prefix) (why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.total:
		return "the server holds its maximum of open connections"
	case l.byIP[key] >= l.perIP:
		return "that client address holds its maximum of open connections"
	}
	l.open++
	l.byIP[key]++
	return ""
}

func (l *limitListener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[key]--; l.byIP[key] <= 0 {
		delete(l.byIP, key)
	}
}

func (l *limitListener) noteRefused(key netip.Prefix, why string) {
	if l.log == nil {
		return
	}
	l.mu.Lock()
	l.refused++
	l.lastWhy, l.lastFrom = why, key
	if time.Since(l.lastLog) < time.Minute {
		l.mu.Unlock()
		return
	}
	n, why, from := l.refused, l.lastWhy, l.lastFrom
	l.refused, l.lastLog = 0, time.Now()
	l.mu.Unlock()
	l.log.Printf("refused %d connection(s), the last from %s: %s (total cap %d, per address %d)", n, from, why, l.total, l.perIP)
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	key  netip.Prefix
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// Unwrap gives the accepted connection (for callers that need the *net.TCPConn).
func (c *limitedConn) Unwrap() net.Conn { return c.Conn }

// extendWriteDeadline gives a streaming response another WriteTimeout (of the server serving r) for its next
// write, so that a long stream is cut only when the client stops reading for that long. Without a server
// deadline (tests with a bare handler, or WriteTimeout 0) it does nothing.
func extendWriteDeadline(w http.ResponseWriter, r *http.Request) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil || srv.WriteTimeout <= 0 {
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(srv.WriteTimeout))
}

// extendWriteDeadlineBy lets a handler that works for up to d before it answers (the manifest route fetches
// the inputs) still answer: the write deadline becomes d plus the server's WriteTimeout from now.
func extendWriteDeadlineBy(w http.ResponseWriter, r *http.Request, d time.Duration) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil || srv.WriteTimeout <= 0 {
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + srv.WriteTimeout))
}

// streamWriter is w with the write deadline extended before each write (see extendWriteDeadline).
func streamWriter(w http.ResponseWriter, r *http.Request) io.Writer {
	return &deadlineWriter{w: w, r: r}
}

type deadlineWriter struct {
	w http.ResponseWriter
	r *http.Request
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	extendWriteDeadline(d.w, d.r)
	return d.w.Write(p)
}

// keyedLimit counts what is in progress per key (uploads per lease), at most max each.
type keyedLimit struct {
	max int
	mu  sync.Mutex
	n   map[uint64]int
}

func newKeyedLimit(max int) *keyedLimit { return &keyedLimit{max: max, n: map[uint64]int{}} }

// acquire takes a place for key, false when key holds its maximum.
func (k *keyedLimit) acquire(key uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n[key] >= k.max {
		return false
	}
	k.n[key]++
	return true
}

func (k *keyedLimit) release(key uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n[key]--; k.n[key] <= 0 {
		delete(k.n, key)
	}
}

// heldSlot travels in a request's context from a route's wrapper to its authorization hook, which records
// the place it took, so that the wrapper gives it back once the request is done.
type heldSlot struct {
	key  uint64
	held bool
}

type heldSlotKey struct{}

// withSlot runs next with a heldSlot in the request's context and releases the place it took, if any.
func withSlot(k *keyedLimit, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &heldSlot{}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), heldSlotKey{}, s)))
		if s.held {
			k.release(s.key)
		}
	})
}

// takeSlot takes a place for key in the slot withSlot put in r's context; false when key holds its maximum
// (or r did not come through withSlot).
func takeSlot(k *keyedLimit, r *http.Request, key uint64) bool {
	s, _ := r.Context().Value(heldSlotKey{}).(*heldSlot)
	if s == nil || s.held || !k.acquire(key) {
		return false
	}
	s.key, s.held = key, true
	return true
}
