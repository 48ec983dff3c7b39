// gohello: goroutines parked on channels, for the "Go binary" note.
package main

import (
	"fmt"
	"os"
	"time"
)

func parked(c chan int) { <-c }

func main() {
	c := make(chan int)
	for i := 0; i < 3; i++ {
		go parked(c)
	}
	time.Sleep(50 * time.Millisecond)
	fmt.Println("READY")
	os.Stdout.Sync()
	go func() { time.Sleep(120 * time.Second); os.Exit(0) }()
	<-c
}
