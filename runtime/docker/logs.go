package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/sparenet/spare/runtime"
)

// cursor is how far the log copier got: the bytes of the log stream "since Anchor" (entries stamped at or after
// Anchor, in the engine's order) that are in LogPath, and LogPath's size when that was recorded.
type cursor struct {
	Anchor int64 `json:"anchor_ns,omitempty"` // unix nanoseconds; 0: the beginning of the log
	Bytes  int64 `json:"bytes"`
	Offset int64 `json:"offset"`
}

// skip is how many bytes of the stream since c.Anchor are already in a LogPath of size now: what the cursor
// counted, and what was appended after it was recorded.
func (c cursor) skip(now int64) int64 {
	if now >= c.Offset {
		return c.Bytes + now - c.Offset
	}
	return c.Bytes // LogPath shrank under us: trust the cursor
}

const cursorRecord = 128 // the cursor file is one fixed-size record, rewritten in place

func encodeCursor(c cursor) []byte {
	b, _ := json.Marshal(c)
	rec := bytes.Repeat([]byte{' '}, cursorRecord)
	copy(rec, b)
	rec[cursorRecord-1] = '\n'
	return rec
}

func writeCursor(path string, c cursor) error {
	if err := os.WriteFile(path, encodeCursor(c), 0o644); err != nil {
		return fmt.Errorf("docker: log cursor: %w", err)
	}
	return nil
}

func readCursor(path string) (cursor, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return cursor{}, false
	}
	var c cursor
	if err := json.Unmarshal(bytes.TrimSpace(b), &c); err != nil {
		return cursor{}, false
	}
	return c, true
}

// logSource opens the container's log stream (multiplexed, follow, with timestamps) from since (unix
// nanoseconds; 0: from the beginning).
type logSource func(ctx context.Context, since int64) (io.ReadCloser, error)

// sinceParam formats a unix-nanosecond time as the engine's "since" parameter.
func sinceParam(ns int64) string {
	return strconv.FormatInt(ns/1e9, 10) + "." + fmt.Sprintf("%09d", ns%1e9)
}

// logCopier appends the entries of a log stream to a file and keeps its cursor file up to date.
type logCopier struct {
	logPath    string
	cursorPath string
	open       logSource
	// margin: how far out of timestamp order the engine may write entries; the anchor stays this far behind the
	// newest entry. every: how often (in log time) the anchor moves.
	margin, every time.Duration
	// published is called with each new cursor, after it is written.
	published func(cursor)
}

const (
	defaultAnchorMargin = 5 * time.Second
	defaultAnchorEvery  = 10 * time.Second
)

// stamp is a copied entry's time and length, kept while it may still count in a future anchor's byte count.
type stamp struct{ t, n int64 }

// copyOnce reads one log stream from cur to its end (or an error) and returns the cursor it got to. A nil error
// means the stream ended normally: the container stopped and its log was drained.
func (lc *logCopier) copyOnce(ctx context.Context, cur cursor) (out cursor, err error) {
	// The log and its index (runtime.LogWriter: each entry's stream and the engine's time for it).
	lw, files, err := runtime.OpenLogWriter(lc.logPath, 0)
	if err != nil {
		return cur, fmt.Errorf("docker: %w", err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	lw.SetBuffered()
	cf, err := os.OpenFile(lc.cursorPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return cur, fmt.Errorf("docker: log cursor: %w", err)
	}
	defer cf.Close()
	offset := lw.Size()
	anchor := cur.Anchor
	skip := cur.skip(offset)
	var pos int64 // bytes of the stream since anchor seen (in LogPath before, or appended now)

	rc, err := lc.open(ctx, anchor)
	if err != nil {
		return cur, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)

	var (
		stamps   []stamp
		keep     = 1024 // prune stamps when there are more than this
		maxT     int64
		hdr      [8]byte
		payload  []byte
		newest   = cur
		flushErr error
	)
	flush := func() {
		if b := lw.Buffered(); b > 0 && flushErr == nil {
			n, werr := lw.Flush()
			offset += int64(n)
			if werr != nil {
				// What was not written is not in LogPath: take it back from the count.
				pos -= int64(b - n)
				flushErr = fmt.Errorf("docker: %w", werr)
			}
		}
		if flushErr == nil && pos >= skip && maxT-anchor >= int64(lc.every) {
			// Move the anchor up: the bytes of the stream since the new anchor are those of the entries
			// stamped at or after it that we copied (entries written out of order are never stamped more than
			// margin before the newest one).
			a := maxT - int64(lc.margin)
			if a > anchor {
				var b int64
				for _, s := range stamps {
					if s.t >= a {
						b += s.n
					}
				}
				anchor, pos, skip = a, b, 0
			}
		}
		// Until the skipped part is read again, LogPath still holds skip bytes of the stream.
		c := cursor{Anchor: anchor, Bytes: max(pos, skip), Offset: offset}
		if c != newest {
			if _, werr := cf.WriteAt(encodeCursor(c), 0); werr != nil && flushErr == nil {
				flushErr = fmt.Errorf("docker: log cursor: %w", werr)
			}
			newest = c
			if lc.published != nil {
				lc.published(c)
			}
		}
	}
	defer func() {
		flush()
		out = newest
		if err == nil {
			err = flushErr
		}
	}()

	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return newest, nil
			}
			return newest, fmt.Errorf("docker: log stream: %w", err)
		}
		size := int(binary.BigEndian.Uint32(hdr[4:]))
		payload = slices.Grow(payload[:0], size)[:size]
		if _, err := io.ReadFull(br, payload); err != nil {
			return newest, fmt.Errorf("docker: log stream: %w", err)
		}
		if hdr[0] == 3 { // the engine's own error, after the response began
			return newest, fmt.Errorf("docker: log stream: %s", bytes.TrimSpace(payload))
		}
		t, msg := splitStamp(payload)
		if t >= anchor {
			n := int64(len(msg))
			if pos < skip {
				k := min(n, skip-pos)
				msg = msg[k:]
			}
			pos += n
			stamps = append(stamps, stamp{t, n})
			maxT = max(maxT, t)
		}
		// else: an entry stamped before the anchor, written after those copied when the anchor moved: not part of
		// the stream since anchor (so not counted), but new to LogPath.
		st := runtime.Stdout
		if hdr[0] == 2 {
			st = runtime.Stderr
		}
		at := time.Now()
		if t > 0 {
			at = time.Unix(0, t)
		}
		_ = lw.Write(st, at, msg) // buffered: errors come from Flush

		if len(stamps) > keep {
			// Stamps older than margin before the newest can no longer be after any future anchor.
			lim := maxT - int64(lc.margin)
			stamps = slices.DeleteFunc(stamps, func(s stamp) bool { return s.t < lim })
			keep = max(1024, 2*len(stamps))
		}
		if !frameBuffered(br) || lw.Buffered() >= 1<<20 {
			flush()
			if flushErr != nil {
				return newest, flushErr
			}
		}
	}
}

// frameBuffered reports whether a whole frame can be read without blocking.
func frameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < 8 {
		return false
	}
	h, _ := br.Peek(8)
	return br.Buffered() >= 8+int(binary.BigEndian.Uint32(h[4:]))
}

// splitStamp splits "TIMESTAMP TEXT" (the engine's timestamps=1 form) into unix nanoseconds and TEXT. Without a
// readable timestamp the time is 0 and the text the whole payload.
func splitStamp(p []byte) (int64, []byte) {
	i := bytes.IndexByte(p, ' ')
	if i < 0 {
		return 0, p
	}
	t, err := time.Parse(time.RFC3339Nano, string(p[:i]))
	if err != nil {
		return 0, p
	}
	return t.UnixNano(), p[i+1:]
}
