package install

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Disk actions in a plan.
const (
	ActionInstall  = "install"          // blank disk
	ActionWipe     = "wipe and install" // data on it, Config.Wipe given
	ActionContinue = "continue"         // an interrupted InitOS install
	ActionComplete = "complete"         // already installed: only checked
)

// PlannedDisk is one target disk and what will happen to it.
type PlannedDisk struct {
	*Disk
	Action string  `json:"action"`
	Layout *Layout `json:"layout"`
}

// Plan is what Run will write, shown before anything is written.
type Plan struct {
	InstallID string         `json:"install_id"`
	Disks     []*PlannedDisk `json:"disks"`
	// Complete: every disk already holds this install, complete; only the
	// boot entries are checked.
	Complete bool `json:"complete"`
	// Skipped lists disks "auto" looked at and left alone, with why.
	Skipped []string `json:"skipped,omitempty"`
}

// IDs returns the stable ids of the plan's disks, in order.
func (p *Plan) IDs() []string {
	ids := make([]string, len(p.Disks))
	for i, d := range p.Disks {
		ids[i] = d.ID
	}
	return ids
}

// makePlan applies the safety rules to described and probed disks and
// lays them out. auto skips unsuitable disks instead of refusing them.
func makePlan(disks []*Disk, cfg *Config, auto bool, rnd io.Reader) (*Plan, error) {
	p := &Plan{}
	for _, d := range disks {
		pd, err := planDisk(d, cfg, auto)
		var ref *RefusedError
		if auto && errors.As(err, &ref) {
			p.Skipped = append(p.Skipped, fmt.Sprintf("%s (%s): %s", d.Path, d.ID, ref.Reason))
			continue
		}
		if err != nil {
			return nil, err
		}
		p.Disks = append(p.Disks, pd)
	}
	if len(p.Disks) == 0 {
		return nil, fmt.Errorf("no disk to install to: %s", strings.Join(append([]string{"none suitable"}, p.Skipped...), "; "))
	}
	if err := p.resume(); err != nil {
		return nil, err
	}
	return p, p.assignGUIDs(rnd)
}

// planDisk decides what happens to one disk, or refuses it.
func planDisk(d *Disk, cfg *Config, auto bool) (*PlannedDisk, error) {
	name := fmt.Sprintf("%s (%s)", d.Path, d.ID)
	refuse := func(format string, a ...any) (*PlannedDisk, error) {
		return nil, &RefusedError{Disk: name, Reason: fmt.Sprintf(format, a...)}
	}
	c := d.Content
	switch {
	case d.InUse != "":
		return refuse("it is in use: %s", d.InUse)
	case d.ReadOnly:
		return refuse("it is read-only")
	case d.Size == 0:
		return refuse("it has no medium (size 0)")
	case auto && d.Removable:
		return refuse("it is removable (name it to install to it)")
	case auto && c.Kind == Foreign:
		return refuse("it holds %s", c.What)
	case c.Kind == Foreign && !cfg.Wipe:
		return refuse("it holds %s; pass --wipe to erase it", c.What)
	}
	want, err := planLayout(int64(d.Size), d.SectorSize, cfg.ESPSize, cfg.MinRootSize, cfg.SingleESP)
	if err != nil {
		return refuse("%v", err)
	}
	pd := &PlannedDisk{Disk: d, Layout: want, Action: ActionInstall}
	switch {
	case c.Kind == Foreign || c.Kind == Complete && cfg.Wipe:
		pd.Action = ActionWipe
	case c.Kind == Complete:
		pd.Action, pd.Layout = ActionComplete, c.Layout
	case c.Kind == Partial:
		pd.Action = ActionContinue
		if sameGeometry(want, c.Layout) {
			pd.Layout = c.Layout // keep its GUIDs: the ESPs may be done
		}
	}
	return pd, nil
}

// resume checks that the disks are one install: either all complete (of
// the same install, on the same disks) or none.
func (p *Plan) resume() error {
	var done []*PlannedDisk
	for _, d := range p.Disks {
		if d.Action == ActionComplete {
			done = append(done, d)
		}
	}
	if len(done) == 0 {
		return nil
	}
	tok := done[0].Content.Token
	for _, d := range p.Disks {
		name := fmt.Sprintf("%s (%s)", d.Path, d.ID)
		if d.Action != ActionComplete {
			return &RefusedError{Disk: name, Reason: fmt.Sprintf("%s holds the complete InitOS install %s but this disk does not; pass --wipe to install anew", done[0].Path, tok.InstallID)}
		}
		if d.Content.Token.InstallID != tok.InstallID {
			return &RefusedError{Disk: name, Reason: fmt.Sprintf("it holds InitOS install %s, %s holds %s; pass --wipe to install anew", d.Content.Token.InstallID, done[0].Path, tok.InstallID)}
		}
	}
	if !slices.Equal(tok.Disks, p.IDs()) {
		return &RefusedError{Disk: done[0].Path, Reason: fmt.Sprintf("the complete install %s is on disks %s, not %s; name the same disks, or pass --wipe", tok.InstallID, strings.Join(tok.Disks, ", "), strings.Join(p.IDs(), ", "))}
	}
	p.Complete, p.InstallID = true, tok.InstallID
	return nil
}

// assignGUIDs gives new layouts random disk and partition GUIDs and the
// plan an install id.
func (p *Plan) assignGUIDs(rnd io.Reader) error {
	newGUID := func() (string, error) {
		u, err := uuid.NewRandomFromReader(rnd)
		return strings.ToUpper(u.String()), err
	}
	var err error
	if p.InstallID == "" {
		if p.InstallID, err = newGUID(); err != nil {
			return err
		}
		p.InstallID = strings.ToLower(p.InstallID)
	}
	for _, d := range p.Disks {
		l := d.Layout
		if l.DiskGUID == "" {
			if l.DiskGUID, err = newGUID(); err != nil {
				return err
			}
		}
		for i := range l.Partitions {
			if l.Partitions[i].GUID == "" {
				if l.Partitions[i].GUID, err = newGUID(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// randReader is the randomness of GUIDs and ids (tests replace it).
var randReader io.Reader = rand.Reader

// Write prints the plan for a human.
func (p *Plan) Write(w io.Writer) {
	fmt.Fprintf(w, "InitOS install %s: %d disk(s)\n", p.InstallID, len(p.Disks))
	for i, d := range p.Disks {
		model := d.Model
		if model == "" {
			model = "unknown model"
		}
		fmt.Fprintf(w, "  disk %d: %s  %s  %s  %q  %s -> %s\n", i+1, d.Path, d.ID, d.Size.Human(), model, d.Content.What, d.Action)
		fmt.Fprint(w, d.Layout.String())
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "  not used: %s\n", s)
	}
}
