// Command workload is the test workload of runtime/docker's tests. It is compiled statically into an image built
// FROM scratch, installed both as /workload (the image's entrypoint) and as /bin/sh, so that the runtime's
// "/bin/sh -c COMMAND" form works in an image without a shell: invoked as "sh -c 'a b c'" it splits the command on
// white space and runs the same actions as "/workload a b c".
//
// Actions, run in order:
//
//	out TEXT           print TEXT on stdout
//	err TEXT           print TEXT on stderr
//	lines N            print "line 1" ... "line N" on stdout
//	ticks N DUR        print "tick 1" ... "tick N" on stdout (odd ones) and stderr (even ones), DUR apart
//	write PATH TEXT    create PATH's directory and write TEXT (and a newline) to PATH
//	env                print every environment variable as "ENV KEY=VALUE"
//	id                 print "UID u GID g"
//	alloc MB           allocate and touch MB MiB, printing progress
//	sleep DUR          sleep
//	trap               on SIGTERM, print "got SIGTERM" and exit 143
//	exit CODE          exit with CODE
//	groups             print "GROUPS g1 g2 ..." (the supplementary groups)
//	status             print the Seccomp, NoNewPrivs, CapEff and Groups lines of /proc/self/status
//	ps                 print "PROC pid cmdline" for every process visible in /proc, then "PROCS n"
//	fill PATH MB       write MB MiB to PATH: prints "filled PATH MB MiB", or "fill PATH stopped after N MiB: ERR"
//	                   (and goes on with the next action)
//	setuid PATH        write PATH, try to chown it to root and to make it setuid (and setgid): prints "setuid PATH
//	                   chown: ERR|ok chmod: ERR|ok mode MODE uid UID" (and goes on)
//	tamper PATH        try to change the file PATH every way a workload could, printing "tamper PATH HOW: ok" or
//	                   "tamper PATH HOW: ERR" for each (and goes on): write, append, chmod, then write again,
//	                   truncate, touch, remove, rename away, rename a new file over it (from PATH's directory and
//	                   from the working directory), hard-link it out and write through the link, hard-link a new
//	                   file and rename the link over it, rename PATH's directory away and put a fake in its place
//	tamperdir DIR      try to change the directory DIR, as tamper: create a file, a directory and a link in it,
//	                   remove all of it, rename it away, rename a new directory over it
//	rendezvous         as a cluster member (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): rank 0 listens on
//	                   MASTER_PORT and prints "rank 0 got: LINE" for each other rank's hello (and writes them to
//	                   out/messages.txt); the others connect to MASTER_ADDR:MASTER_PORT (retrying for 60 s) and
//	                   say "hello from rank N"
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "sh" {
		if len(args) != 2 || args[0] != "-c" {
			fail("usage: sh -c COMMAND")
		}
		args = strings.Fields(args[1])
	}
	for len(args) > 0 {
		op := args[0]
		args = args[1:]
		need := func(n int) []string {
			if len(args) < n {
				fail(op + ": missing argument")
			}
			a := args[:n]
			args = args[n:]
			return a
		}
		switch op {
		case "out":
			fmt.Fprintln(os.Stdout, need(1)[0])
		case "err":
			fmt.Fprintln(os.Stderr, need(1)[0])
		case "lines":
			n := atoi(need(1)[0])
			for i := 1; i <= n; i++ {
				fmt.Printf("line %d\n", i)
			}
		case "ticks":
			a := need(2)
			n, d := atoi(a[0]), dur(a[1])
			for i := 1; i <= n; i++ {
				w := os.Stdout
				if i%2 == 0 {
					w = os.Stderr
				}
				fmt.Fprintf(w, "tick %d\n", i)
				if i < n {
					time.Sleep(d)
				}
			}
		case "write":
			a := need(2)
			if err := os.MkdirAll(filepath.Dir(a[0]), 0o755); err != nil {
				fail(err.Error())
			}
			if err := os.WriteFile(a[0], []byte(a[1]+"\n"), 0o644); err != nil {
				fail(err.Error())
			}
		case "env":
			for _, kv := range os.Environ() {
				fmt.Println("ENV " + kv)
			}
		case "id":
			fmt.Printf("UID %d GID %d\n", os.Getuid(), os.Getgid())
		case "alloc":
			mb := atoi(need(1)[0])
			var keep [][]byte
			for i := 1; i <= mb; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = byte(i + j)
				}
				keep = append(keep, b)
				if i%16 == 0 {
					fmt.Printf("allocated %d MiB\n", i)
				}
			}
			fmt.Printf("allocated %d MiB in total\n", len(keep))
		case "sleep":
			time.Sleep(dur(need(1)[0]))
		case "trap":
			c := make(chan os.Signal, 1)
			signal.Notify(c, syscall.SIGTERM)
			go func() {
				<-c
				fmt.Println("got SIGTERM")
				os.Exit(143)
			}()
		case "exit":
			os.Exit(atoi(need(1)[0]))
		case "groups":
			g, err := os.Getgroups()
			if err != nil {
				fail(err.Error())
			}
			fmt.Print("GROUPS")
			for _, x := range g {
				fmt.Printf(" %d", x)
			}
			fmt.Println()
		case "status":
			b, err := os.ReadFile("/proc/self/status")
			if err != nil {
				fail(err.Error())
			}
			for _, line := range strings.Split(string(b), "\n") {
				for _, k := range []string{"Seccomp:", "NoNewPrivs:", "CapEff:", "Groups:"} {
					if strings.HasPrefix(line, k) {
						fmt.Println(strings.Join(strings.Fields(line), " "))
					}
				}
			}
		case "ps":
			ents, err := os.ReadDir("/proc")
			if err != nil {
				fail(err.Error())
			}
			n := 0
			for _, e := range ents {
				if _, err := strconv.Atoi(e.Name()); err != nil {
					continue
				}
				cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				fmt.Printf("PROC %s %s\n", e.Name(), strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
				n++
			}
			fmt.Printf("PROCS %d\n", n)
		case "fill":
			a := need(2)
			fill(a[0], atoi(a[1]))
		case "setuid":
			setuid(need(1)[0])
		case "symlink": // symlink TARGET NAME: a link to anything (the attack on outputs)
			a := need(2)
			if err := os.Symlink(a[0], a[1]); err != nil {
				fail("symlink: " + err.Error())
			}
		case "tamper":
			tamper(need(1)[0])
		case "tamperdir":
			tamperDir(need(1)[0])
		case "rendezvous":
			rendezvous()
		default:
			fail("unknown action " + strconv.Quote(op))
		}
	}
}

func fill(path string, mb int) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Printf("fill %s stopped after 0 MiB: %v\n", path, err)
		return
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for i := 0; i < mb; i++ {
		if _, err := f.Write(buf); err != nil {
			fmt.Printf("fill %s stopped after %d MiB: %v\n", path, i, err)
			return
		}
	}
	if err := f.Sync(); err != nil {
		fmt.Printf("fill %s stopped after %d MiB: %v\n", path, mb, err)
		return
	}
	fmt.Printf("filled %s %d MiB\n", path, mb)
}

func setuid(path string) {
	res := func(err error) string {
		if err != nil {
			return strings.ReplaceAll(err.Error(), " ", "_")
		}
		return "ok"
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		fmt.Printf("setuid %s write: %v\n", path, err)
		return
	}
	errChown := os.Chown(path, 0, 0)
	errChmod := os.Chmod(path, 0o755|os.ModeSetuid|os.ModeSetgid)
	fi, err := os.Stat(path)
	if err != nil {
		fmt.Printf("setuid %s stat: %v\n", path, err)
		return
	}
	fmt.Printf("setuid %s chown: %s chmod: %s mode %v uid %d\n", path, res(errChown), res(errChmod), fi.Mode(),
		fi.Sys().(*syscall.Stat_t).Uid)
}

// scratch numbers the scratch files of tamper and tamperDir, so that no attempt finds another's.
var scratch int

// scratchName is a new name for a scratch file: .tamper-N-WHAT in dir.
func scratchName(dir, what string) string {
	scratch++
	return filepath.Join(dir, ".tamper-"+strconv.Itoa(scratch)+"-"+what)
}

// tamper tries every way to change the file p (see the actions above). Its scratch files are named .tamper-*.
func tamper(p string) {
	try := func(how string, f func() error) {
		res := "ok"
		if err := f(); err != nil {
			res = err.Error()
		}
		fmt.Printf("tamper %s %s: %s\n", p, how, res)
	}
	write := func(flag int) func() error {
		return func() error {
			f, err := os.OpenFile(p, os.O_WRONLY|flag, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString("tampered\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
	}
	fake := func(name string) (string, error) {
		return name, os.WriteFile(name, []byte("fake\n"), 0o644)
	}
	dir := filepath.Dir(p)
	try("write", write(0))
	try("append", write(os.O_APPEND))
	try("chmod", func() error { return os.Chmod(p, 0o666) })
	try("write-after-chmod", write(os.O_TRUNC))
	try("truncate", func() error { return os.Truncate(p, 0) })
	try("touch", func() error { return os.Chtimes(p, time.Now(), time.Now()) })
	try("remove", func() error { return syscall.Unlink(p) })
	try("rename-away", func() error { return syscall.Rename(p, scratchName(".", "away")) })
	try("rename-over-beside", func() error {
		f, err := fake(scratchName(dir, "beside"))
		if err != nil {
			return err
		}
		return syscall.Rename(f, p)
	})
	try("rename-over", func() error {
		f, err := fake(scratchName(".", "over"))
		if err != nil {
			return err
		}
		return syscall.Rename(f, p)
	})
	try("link-out", func() error {
		link := scratchName(".", "link")
		if err := syscall.Link(p, link); err != nil {
			return err
		}
		if err := os.Chmod(link, 0o644); err != nil {
			return err
		}
		return os.WriteFile(link, []byte("tampered through a link\n"), 0o644)
	})
	try("link-replace", func() error {
		f, err := fake(scratchName(dir, "new"))
		if err != nil { // a read-only directory: from the working directory
			if f, err = fake(scratchName(".", "new")); err != nil {
				return err
			}
		}
		link := scratchName(filepath.Dir(f), "newlink")
		if err := syscall.Link(f, link); err != nil {
			return err
		}
		return syscall.Rename(link, p)
	})
	try("rename-dir-away", func() error {
		if dir == "." || dir == "/" {
			return syscall.Rename(".", scratchName("..", "work")) // the working directory itself
		}
		if err := syscall.Rename(dir, scratchName(filepath.Dir(dir), "moved")); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte("fake\n"), 0o644)
	})
}

// tamperDir tries every way to change the directory d (see the actions above).
func tamperDir(d string) {
	try := func(how string, f func() error) {
		res := "ok"
		if err := f(); err != nil {
			res = err.Error()
		}
		fmt.Printf("tamper %s %s: %s\n", d, how, res)
	}
	try("create", func() error { return os.WriteFile(scratchName(d, "new"), []byte("new\n"), 0o644) })
	try("mkdir", func() error { return os.Mkdir(scratchName(d, "dir"), 0o755) })
	try("symlink", func() error { return os.Symlink("/etc/passwd", scratchName(d, "link")) })
	try("chmod", func() error { return os.Chmod(d, 0o777) })
	try("remove-all", func() error { return os.RemoveAll(d) })
	try("rmdir", func() error { return syscall.Rmdir(d) })
	try("rename-away", func() error { return syscall.Rename(d, scratchName(".", "dir-away")) })
	try("rename-over", func() error {
		over := scratchName(".", "dir-over")
		if err := os.Mkdir(over, 0o755); err != nil {
			return err
		}
		return syscall.Rename(over, d)
	})
}

func rendezvous() {
	rank, world := atoi(os.Getenv("RANK")), atoi(os.Getenv("WORLD_SIZE"))
	master := net.JoinHostPort(os.Getenv("MASTER_ADDR"), os.Getenv("MASTER_PORT"))
	fmt.Printf("rank %d of %d; rendezvous %s\n", rank, world, master)
	if rank == 0 {
		ln, err := net.Listen("tcp", ":"+os.Getenv("MASTER_PORT"))
		if err != nil {
			fail(err.Error())
		}
		var got []string
		for i := 1; i < world; i++ {
			c, err := ln.Accept()
			if err != nil {
				fail(err.Error())
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			got = append(got, strings.TrimSpace(line))
			fmt.Printf("rank 0 got: %s\n", got[len(got)-1])
		}
		if err := os.MkdirAll("out", 0o755); err != nil {
			fail(err.Error())
		}
		if err := os.WriteFile("out/messages.txt", []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			fail(err.Error())
		}
		return
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", master, 5*time.Second)
		if err == nil {
			fmt.Fprintf(c, "hello from rank %d\n", rank)
			c.Close()
			fmt.Printf("rank %d sent its hello\n", rank)
			return
		}
		if time.Now().After(deadline) {
			fail(err.Error())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err.Error())
	}
	return n
}

func dur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		fail(err.Error())
	}
	return d
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "workload: "+msg)
	os.Exit(100)
}
