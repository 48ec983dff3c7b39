// parked: N goroutines parked ~12 frames deep, for bench/go.py.
//
//	N/4 receive on one shared channel, N/4 select on two channels,
//	N/4 wait for a sync.Mutex main holds, N/4 sleep 1h under pprof
//	labels (role=sleeper).  Two GCs after parking, so g.waitsince is set.
//
// Usage: parked N.  Prints READY when every goroutine is parked, then
// blocks until killed.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

var (
	ch1, ch2, ch3 = make(chan int), make(chan int), make(chan int)
	mu            sync.Mutex
	wg            sync.WaitGroup
)

//go:noinline
func deep(n, kind int) {
	if n > 0 {
		deep(n-1, kind)
		return
	}
	wg.Done()
	switch kind {
	case 0:
		<-ch1
	case 1:
		select {
		case <-ch2:
		case <-ch3:
		}
	case 2:
		mu.Lock()
	default:
		pprof.Do(context.Background(), pprof.Labels("role", "sleeper"),
			func(context.Context) { time.Sleep(time.Hour) })
	}
}

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	mu.Lock()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go deep(10, i%4)
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	fmt.Println("READY")
	select {}
}
