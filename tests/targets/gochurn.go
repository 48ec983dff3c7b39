// gochurn: two goroutines allocate 64 KiB slices as fast as they can (a
// mutex-protected global keeps up to 2000 of them alive), so the Go
// runtime keeps switching to the system stack (span allocation, GC
// assists, sweeping): record's unwinder must cross runtime.systemstack
// from g0 back into the goroutine, as Go's own traceback does.
//
//	goroutines  main.churn x2 (runnable/running), main.main (sleep)
//
// READY once both churners started.  --timeout N: exit(0) after N s
// (default 120).
package main

import (
	"os"
	"strconv"
	"sync"
	"time"
)

var (
	sinkMu sync.Mutex
	sink   [][]byte
)

//go:noinline
func churn(started chan<- bool) {
	started <- true
	for {
		b := make([]byte, 1<<16)
		sinkMu.Lock()
		sink = append(sink, b)
		if len(sink) > 2000 {
			sink = nil
		}
		sinkMu.Unlock()
	}
}

func main() {
	timeout := 120
	if len(os.Args) > 2 && os.Args[1] == "--timeout" {
		if n, err := strconv.Atoi(os.Args[2]); err == nil && n > 0 {
			timeout = n
		}
	}
	started := make(chan bool)
	go churn(started)
	go churn(started)
	<-started
	<-started
	os.Stdout.WriteString("READY\n")
	time.Sleep(time.Duration(timeout) * time.Second)
}
