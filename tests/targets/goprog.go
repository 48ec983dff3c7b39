// goprog: the Go oracle for `pmprof goroutines` and `pmprof go`.  It parks
// goroutines in known ways, each in its own //go:noinline main.park*
// function, then writes what the runtime itself says about them, so the
// tests compare pmprof's reading from outside with the program's own view.
//
//	goroutine(s)                        function              Go's header
//	3 x send on an unbuffered chan      main.parkSend         chan send
//	4 x receive on a chan               main.parkRecv         chan receive
//	1 x receive on a nil chan           main.parkNilRecv      chan receive (nil chan)
//	2 x select with 2 cases             main.parkSelect       select
//	1 x select {}                       main.parkSelectNone   select (no cases)
//	1 x holds mutexB, receives          main.parkHoldMutex    chan receive
//	5 x sync.Mutex Lock: 3 on mutexA    main.parkMutex        semacquire
//	    (held by main), 2 on mutexB
//	    (held by parkHoldMutex)
//	1 x RWMutex.RLock, main holds Lock  main.parkRLock        semacquire
//	2 x WaitGroup.Wait                  main.parkWaitGroup    semacquire
//	2 x sync.Cond.Wait                  main.parkCond         sync.Cond.Wait
//	3 x time.Sleep(1h) under pprof.Do   main.sleepHour <- main.parkSleep.func1
//	    labels role=sleeper idx=0..2        <- runtime/pprof.Do <- main.parkSleep
//	1 x time.Sleep(1h) in main.sleepInlined, which the compiler inlines
//	    into main.parkSleepInlined                            sleep
//	2 x conn.Read on loopback TCP       main.parkNetRead      IO wait
//	1 x read(2) on a pipe, syscall.Read main.parkSyscallRead  syscall
//	1 x LockOSThread, then receives     main.parkLocked       chan receive, locked to thread
//	2 x busy loop under pprof.Do        main.spin <- main.parkSpin.func1 <- ... main.parkSpin
//	    labels role=spinner idx=0..1    (not with --no-spin)  runnable / running
//	N x receive on one chan (--many N)  main.parkMany         chan receive
//	goroutine 1 (main.main)             main.blockForever     chan receive (after READY)
//
// Every goroutine was created by main.main.  Once all of them are parked
// (the program checks its own debug=2 dump until each park function is in
// place and not runnable), main runs runtime.GC() twice so the GC stamps
// g.waitsince of every blocked goroutine, then writes into --out DIR:
//
//	goroutines.2.txt   pprof.Lookup("goroutine").WriteTo(f, 2)
//	goroutines.1.txt   the same with debug=1 (grouped, with labels)
//	goroutines.pb.gz   the same with debug=0 (proto)
//	memstats.json      runtime.ReadMemStats, encoding/json
//	extra.json         GOMAXPROCS, GCPercent, MemoryLimit, NumGoroutine,
//	                   pid, GoVersion, syscall_tid (the thread blocked in
//	                   read(2)), locked_tid (the LockOSThread goroutine's)
//
// READY (stdout) once the files are complete; from then on nothing runs
// but the spinners: no goroutine is created, no memory allocated, so the
// runtime's figures stay as written until sysmon forces a GC two minutes
// after the last one.  goprog then blocks until killed (and dies with its
// parent: PR_SET_PDEATHSIG).
//
// Built four ways (Makefile): default (cgo, dynamic), -ldflags=-w,
// -ldflags='-s -w', CGO_ENABLED=0.  Never with -N -l: inlining is real.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	arrived int64 // goroutines about to park (a hint; the dump decides)
	sink    int64 // spinners write here so the loop is not removed

	keep []interface{} // conns and pipe ends stay referenced

	syscallTid int64
	lockedTid  int64
)

func arrive() { atomic.AddInt64(&arrived, 1) }

//go:noinline
func parkSend(c chan int) {
	arrive()
	c <- 1
}

//go:noinline
func parkRecv(c chan int) int {
	arrive()
	return <-c
}

//go:noinline
func parkNilRecv() int {
	var c chan int
	arrive()
	return <-c
}

//go:noinline
func parkSelect(a, b chan int) int {
	arrive()
	select {
	case v := <-a:
		return v
	case b <- 1:
		return 0
	}
}

//go:noinline
func parkSelectNone() {
	arrive()
	select {}
}

//go:noinline
func parkHoldMutex(mu *sync.Mutex, held chan<- bool, c chan int) int {
	mu.Lock()
	held <- true
	arrive()
	return <-c
}

//go:noinline
func parkMutex(mu *sync.Mutex) {
	arrive()
	mu.Lock()
	mu.Unlock()
}

//go:noinline
func parkRLock(rw *sync.RWMutex) {
	arrive()
	rw.RLock()
	rw.RUnlock()
}

//go:noinline
func parkWaitGroup(wg *sync.WaitGroup) {
	arrive()
	wg.Wait()
}

//go:noinline
func parkCond(c *sync.Cond) {
	c.L.Lock()
	arrive()
	for {
		c.Wait()
	}
}

//go:noinline
func sleepHour() {
	time.Sleep(time.Hour)
}

//go:noinline
func parkSleep(i int) {
	labels := pprof.Labels("role", "sleeper", "idx", strconv.Itoa(i))
	pprof.Do(context.Background(), labels, func(context.Context) {
		arrive()
		sleepHour()
	})
}

// Small enough for the inliner (no go:noinline): its frame exists only in
// the inline tree of parkSleepInlined.
func sleepInlined() {
	time.Sleep(time.Hour)
}

//go:noinline
func parkSleepInlined() {
	arrive()
	sleepInlined()
}

//go:noinline
func parkNetRead(c net.Conn) (int, error) {
	var buf [16]byte
	arrive()
	return c.Read(buf[:])
}

//go:noinline
func parkSyscallRead(fd int) (int, error) {
	var buf [16]byte
	atomic.StoreInt64(&syscallTid, int64(syscall.Gettid()))
	arrive()
	return syscall.Read(fd, buf[:])
}

//go:noinline
func parkLocked(c chan int) int {
	runtime.LockOSThread()
	atomic.StoreInt64(&lockedTid, int64(syscall.Gettid()))
	arrive()
	return <-c
}

//go:noinline
func spin() {
	arrive()
	x := int64(0)
	for {
		x++
		if x == 0 {
			atomic.StoreInt64(&sink, x)
		}
	}
}

//go:noinline
func parkSpin(i int) {
	labels := pprof.Labels("role", "spinner", "idx", strconv.Itoa(i))
	pprof.Do(context.Background(), labels, func(context.Context) {
		spin()
	})
}

//go:noinline
func parkMany(c chan int) int {
	arrive()
	return <-c
}

//go:noinline
func blockForever(c chan int) int {
	return <-c
}

// loopbackPair returns both ends of a connected loopback TCP connection.
func loopbackPair(ln net.Listener) (net.Conn, net.Conn) {
	d, err := net.Dial("tcp", ln.Addr().String())
	check(err)
	a, err := ln.Accept()
	check(err)
	return d, a
}

// parkedCounts parses the program's own debug=2 dump: for each main.park*
// function (the innermost main.park* frame of a goroutine), how many
// goroutines are in it and not runnable/running.
func parkedCounts() map[string]int {
	var buf bytes.Buffer
	check(pprof.Lookup("goroutine").WriteTo(&buf, 2))
	out := map[string]int{}
	for _, block := range strings.Split(buf.String(), "\n\n") {
		lines := strings.Split(block, "\n")
		h := lines[0]
		i, j := strings.Index(h, "["), strings.Index(h, "]")
		if !strings.HasPrefix(h, "goroutine ") || i < 0 || j < i {
			continue
		}
		state := strings.SplitN(h[i+1:j], ",", 2)[0]
		if state == "runnable" || state == "running" {
			// spinners are always one of these: count them where they spin
			if !strings.Contains(block, "\nmain.spin()") {
				continue
			}
		}
		for _, ln := range lines[1:] {
			if strings.HasPrefix(ln, "main.park") {
				name := ln[:strings.IndexAny(ln, "(")]
				out[strings.TrimSuffix(name, ".func1")]++
				break
			}
		}
	}
	return out
}

func waitParked(want map[string]int) {
	total := 0
	for _, n := range want {
		total += n
	}
	deadline := time.Now().Add(10 * time.Second)
	for atomic.LoadInt64(&arrived) < int64(total) {
		if time.Now().After(deadline) {
			die("only %d of %d goroutines arrived", atomic.LoadInt64(&arrived), total)
		}
		time.Sleep(time.Millisecond)
	}
	for {
		got := parkedCounts()
		ok := true
		for k, n := range want {
			if got[k] != n {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			die("goroutines not parked after 10 s: want %v, got %v", want, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func writeFile(dir, name string, write func(f *os.File) error) {
	f, err := os.Create(filepath.Join(dir, name))
	check(err)
	check(write(f))
	check(f.Close())
}

func writeJSON(dir, name string, v interface{}) {
	writeFile(dir, name, func(f *os.File) error {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return err
		}
		_, err = f.Write(append(b, '\n'))
		return err
	})
}

func check(err error) {
	if err != nil {
		die("%v", err)
	}
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "goprog: "+format+"\n", args...)
	os.Exit(1)
}

func init() {
	// Runs on the main thread (the runtime locks init to it): the process
	// gets SIGKILL when the test runner that started it dies.
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
}

func main() {
	out, spinners, many := "", 2, 0
	for i := 1; i < len(os.Args); i++ {
		switch a := os.Args[i]; {
		case a == "--out" && i+1 < len(os.Args):
			i++
			out = os.Args[i]
		case a == "--spin":
			spinners = 2
		case a == "--no-spin":
			spinners = 0
		case a == "--many" && i+1 < len(os.Args):
			i++
			n, err := strconv.Atoi(os.Args[i])
			if err != nil || n < 0 {
				die("--many wants a count, not %q", os.Args[i])
			}
			many = n
		default:
			fmt.Fprintln(os.Stderr, "usage: goprog --out DIR [--spin|--no-spin] [--many N]")
			os.Exit(2)
		}
	}
	if out == "" {
		die("--out DIR is required")
	}

	// Each goroutine is started by a `go` statement in main.main itself, so
	// its outermost frame is the park function and "created by main.main".
	want := map[string]int{}
	sendCh, recvCh, never := make(chan int), make(chan int), make(chan int)
	for i := 0; i < 3; i++ {
		go parkSend(sendCh)
	}
	for i := 0; i < 4; i++ {
		go parkRecv(recvCh)
	}
	go parkNilRecv()
	selA, selB := make(chan int), make(chan int)
	for i := 0; i < 2; i++ {
		go parkSelect(selA, selB)
	}
	go parkSelectNone()
	want["main.parkSend"], want["main.parkRecv"], want["main.parkNilRecv"] = 3, 4, 1
	want["main.parkSelect"], want["main.parkSelectNone"] = 2, 1

	var mutexA, mutexB sync.Mutex
	mutexA.Lock()
	held := make(chan bool)
	go parkHoldMutex(&mutexB, held, never)
	<-held
	for i := 0; i < 3; i++ {
		go parkMutex(&mutexA)
	}
	for i := 0; i < 2; i++ {
		go parkMutex(&mutexB)
	}
	want["main.parkHoldMutex"], want["main.parkMutex"] = 1, 5

	var rw sync.RWMutex
	rw.Lock()
	go parkRLock(&rw)
	var wg sync.WaitGroup
	wg.Add(1)
	for i := 0; i < 2; i++ {
		go parkWaitGroup(&wg)
	}
	cond := sync.NewCond(&sync.Mutex{})
	for i := 0; i < 2; i++ {
		go parkCond(cond)
	}
	want["main.parkRLock"], want["main.parkWaitGroup"], want["main.parkCond"] = 1, 2, 2

	for i := 0; i < 3; i++ {
		go parkSleep(i)
	}
	go parkSleepInlined()
	want["main.parkSleep"], want["main.parkSleepInlined"] = 3, 1

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	for i := 0; i < 2; i++ {
		d, a := loopbackPair(ln)
		keep = append(keep, d, a)
		go parkNetRead(a)
	}
	check(ln.Close())
	want["main.parkNetRead"] = 2

	var p [2]int
	check(syscall.Pipe(p[:]))
	keep = append(keep, p)
	go parkSyscallRead(p[0])
	go parkLocked(never)
	want["main.parkSyscallRead"], want["main.parkLocked"] = 1, 1
	for i := 0; i < spinners; i++ {
		go parkSpin(i)
	}
	want["main.parkSpin"] = spinners
	if many > 0 {
		manyCh := make(chan int)
		for i := 0; i < many; i++ {
			go parkMany(manyCh)
		}
		want["main.parkMany"] = many
	}
	waitParked(want)

	runtime.GC()
	runtime.GC()

	check(os.MkdirAll(out, 0o755))
	for _, d := range []int{2, 1, 0} {
		name := map[int]string{2: "goroutines.2.txt", 1: "goroutines.1.txt",
			0: "goroutines.pb.gz"}[d]
		writeFile(out, name, func(f *os.File) error {
			return pprof.Lookup("goroutine").WriteTo(f, d)
		})
	}
	// The figures must be those of the program at READY: if writing them
	// allocated enough for a GC, write them again.
	for try := 0; ; try++ {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		gcPercent := debug.SetGCPercent(100)
		debug.SetGCPercent(gcPercent)
		extra := map[string]interface{}{
			"GOMAXPROCS":   runtime.GOMAXPROCS(0),
			"GCPercent":    gcPercent,
			"MemoryLimit":  debug.SetMemoryLimit(-1),
			"NumGoroutine": runtime.NumGoroutine(),
			"pid":          os.Getpid(),
			"GoVersion":    runtime.Version(),
			"syscall_tid":  atomic.LoadInt64(&syscallTid),
			"locked_tid":   atomic.LoadInt64(&lockedTid),
		}
		writeJSON(out, "memstats.json", &ms)
		writeJSON(out, "extra.json", extra)
		var again runtime.MemStats
		runtime.ReadMemStats(&again)
		if again.NumGC == ms.NumGC {
			break
		}
		if try == 5 {
			die("a GC ran each time the figures were written")
		}
	}

	w := bufio.NewWriter(os.Stdout)
	w.WriteString("READY\n")
	w.Flush()
	blockForever(never)
}
