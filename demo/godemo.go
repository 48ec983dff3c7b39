// godemo: a small Go "service" for `make demo`: 4 workers (pprof label
// role=worker) wait for jobs on one channel, 3 handlers wait for a
// sync.Mutex the cache refresher holds while it sleeps, 2 encoders burn
// CPU (role=encoder).  Prints READY when all are in place.
package main

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

var (
	jobs     = make(chan int)
	cacheMu  sync.Mutex
	ready    sync.WaitGroup
	checksum int
)

//go:noinline
func worker() {
	ready.Done()
	for j := range jobs {
		checksum += j
	}
}

//go:noinline
func handleRequest() {
	ready.Done()
	cacheMu.Lock()
	checksum++
	cacheMu.Unlock()
}

//go:noinline
func refreshCache() {
	cacheMu.Lock()
	ready.Done()
	time.Sleep(time.Hour) // holds cacheMu: the handlers pile up
	cacheMu.Unlock()
}

//go:noinline
func encode(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i % 7
	}
	return s
}

func main() {
	ready.Add(1 + 4 + 3 + 2)
	go refreshCache()
	for i := 0; i < 4; i++ {
		go pprof.Do(context.Background(), pprof.Labels("role", "worker", "id", strconv.Itoa(i)),
			func(context.Context) { worker() })
	}
	time.Sleep(50 * time.Millisecond) // refreshCache holds the lock first
	for i := 0; i < 3; i++ {
		go handleRequest()
	}
	for i := 0; i < 2; i++ {
		go pprof.Do(context.Background(), pprof.Labels("role", "encoder"),
			func(context.Context) {
				ready.Done()
				for {
					checksum += encode(1 << 20)
				}
			})
	}
	ready.Wait()
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	os.Stdout.WriteString("READY\n")
	select {}
}
