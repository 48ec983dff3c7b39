// gohello: a Go binary (built with -gcflags "all=-N -l", no cgo) whose
// goroutines are parked on channels.  pmprof cannot walk Go stacks with
// the C unwinder rules it uses; tests check that it says so clearly.
//
//	goroutines  main.main -> main.parkMain (<-never)
//	            3 x main.parker -> main.parkOn (<-c), started as goroutines
//
// READY once the three parkers reached parkOn (they signal just before the
// receive; the Go scheduler gives no stronger guarantee).  Go threads have
// no names of their own: every thread is "gohello".
// --timeout N: exit(0) after N seconds (default 120).  --gencore: panic
// after READY with GOTRACEBACK=crash, so the runtime aborts (SIGABRT) and
// the kernel writes a core.
package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"time"
)

//go:noinline
func parkOn(c chan int, arrived chan<- bool) int {
	arrived <- true
	return <-c
}

//go:noinline
func parker(c chan int, arrived chan<- bool) {
	parkOn(c, arrived)
}

//go:noinline
func parkMain(never chan int) {
	<-never
}

func main() {
	timeout := 120
	gencore := false
	for i := 1; i < len(os.Args); i++ {
		switch a := os.Args[i]; a {
		case "--gencore":
			gencore = true
		case "--timeout":
			if i+1 < len(os.Args) {
				i++
				if n, err := strconv.Atoi(os.Args[i]); err == nil && n > 0 {
					timeout = n
				}
			}
		default:
			os.Stderr.WriteString("usage: gohello [--timeout N] [--gencore]\n")
			os.Exit(2)
		}
	}
	go func() {
		time.Sleep(time.Duration(timeout) * time.Second)
		os.Exit(0)
	}()
	never := make(chan int)
	arrived := make(chan bool)
	for i := 0; i < 3; i++ {
		go parker(never, arrived)
	}
	for i := 0; i < 3; i++ {
		<-arrived
	}
	os.Stdout.WriteString("READY\n")
	if gencore {
		debug.SetTraceback("crash")
		panic("gohello: --gencore")
	}
	parkMain(never)
}
