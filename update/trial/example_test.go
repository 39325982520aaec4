package trial_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"initos/efivar"
	"initos/update/trial"
)

// The initrd of slot b finds the record `initos upgrade` left on slot a
// and starts the trial.
func ExampleBegin() {
	dir, err := os.MkdirTemp("", "efivars")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	vars := &efivar.Dir{Path: dir} // efivar.OpenEfivarfs("") in the initrd
	trial.Write(vars, &trial.Record{Slot: "b", From: "a", State: trial.Staged, SecurityVersion: 3, BuildID: "2026.11"})

	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	out, err := trial.Begin(vars, trial.Boot{Slot: "b", SecurityVersion: 3, BuildID: "2026.11", Now: now})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Trial, out.Record.State)
	// Output: true trying
}
