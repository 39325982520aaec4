package btrfsioctl

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"unsafe"
)

// List returns every subvolume of the filesystem that holds fsPath, sorted
// by id, found by a search of the root tree for ROOT_ITEM and ROOT_BACKREF
// items. Paths are relative to the top level. It needs CAP_SYS_ADMIN.
func List(fsPath string) ([]Subvolume, error) {
	f, err := openDir("list subvolumes", fsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	items := map[uint64]*Subvolume{}
	get := func(id uint64) *Subvolume {
		if items[id] == nil {
			items[id] = &Subvolume{ID: id}
		}
		return items[id]
	}
	hasRef := map[uint64]bool{}
	dirIDs := map[uint64]uint64{}
	key := searchKey{
		treeID: rootTreeObjectID, minObjectID: firstFreeObjectID, maxObjectID: lastFreeObjectID,
		minType: rootItemKey, maxType: rootBackrefKey, maxOffset: ^uint64(0), maxTransID: ^uint64(0),
	}
	err = treeSearch(f, fsPath, key, func(it item) error {
		switch it.typ {
		case rootItemKey:
			var ri rootItem
			if _, err := decodeItem(it.data, &ri); err != nil {
				return fmt.Errorf("list subvolumes %s: root item %d: %w", fsPath, it.objectID, err)
			}
			get(it.objectID).fromRootItem(&ri)
		case rootBackrefKey:
			var rr rootRef
			rest, err := decodeItem(it.data, &rr)
			if err == nil {
				get(it.objectID).Name, err = itemName(rest, rr.NameLen)
			}
			if err != nil {
				return fmt.Errorf("list subvolumes %s: root backref %d: %w", fsPath, it.objectID, err)
			}
			get(it.objectID).ParentID = it.offset
			hasRef[it.objectID] = true
			dirIDs[it.objectID] = rr.DirID
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Subvolume
	paths := map[uint64]string{fsTreeObjectID: ""}
	for id := range hasRef {
		p, err := resolvePath(f, fsPath, id, items, dirIDs, paths, 0)
		if err != nil {
			return nil, err
		}
		items[id].Path = p
		out = append(out, *items[id])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// resolvePath builds the top-level-relative path of subvolume id from its
// parent's path, the directory inside the parent (INO_LOOKUP) and its name.
func resolvePath(f *os.File, fsPath string, id uint64, items map[uint64]*Subvolume, dirIDs map[uint64]uint64, paths map[uint64]string, depth int) (string, error) {
	if p, ok := paths[id]; ok {
		return p, nil
	}
	s := items[id]
	if s == nil || depth > 4096 {
		return "", fmt.Errorf("resolve subvolume path %s: id %d: no back reference", fsPath, id)
	}
	parent, err := resolvePath(f, fsPath, s.ParentID, items, dirIDs, paths, depth+1)
	if err != nil {
		return "", err
	}
	dir, err := inoPath(f, fsPath, s.ParentID, dirIDs[id])
	if err != nil {
		return "", err
	}
	p := path.Join(parent, dir, s.Name)
	paths[id] = p
	return p, nil
}

func (s *Subvolume) fromRootItem(ri *rootItem) {
	s.Generation = ri.Generation
	s.ReadOnly = ri.Flags&rootSubvolRdonly != 0
	if ri.GenerationV2 == ri.Generation {
		s.UUID, s.ParentUUID, s.ReceivedUUID = ri.UUID, ri.ParentUUID, ri.ReceivedUUID
		s.CreationGeneration = ri.OTransID
	}
}

// Info returns the subvolume that contains path
// (BTRFS_IOC_GET_SUBVOL_INFO, Linux 4.18 or later), with its path relative
// to the top level.
func Info(p string) (Subvolume, error) {
	f, err := openDir("get subvolume info", p)
	if err != nil {
		return Subvolume{}, err
	}
	defer f.Close()
	var a getSubvolInfoArgs
	if err := ioctl(f, "get subvolume info", p, iocGetSubvolInfo, unsafe.Pointer(&a)); err != nil {
		return Subvolume{}, err
	}
	s := Subvolume{
		ID: a.treeID, ParentID: a.parentID, Name: cString(a.name[:]),
		UUID: a.uuid, ParentUUID: a.parentUUID, ReceivedUUID: a.receivedUUID,
		Generation: a.generation, CreationGeneration: a.otransid,
		ReadOnly: a.flags&rootSubvolRdonly != 0,
	}
	if s.ID == fsTreeObjectID {
		return s, nil
	}
	s.Path, err = PathOf(p, s.ID)
	return s, err
}

// PathOf returns the path, relative to the top level, of the subvolume id
// on the filesystem that holds fsPath (tree search for ROOT_BACKREF items
// and INO_LOOKUP). It needs CAP_SYS_ADMIN.
func PathOf(fsPath string, id uint64) (string, error) {
	f, err := openDir("resolve subvolume path", fsPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var parts []string
	for id != fsTreeObjectID {
		var ref rootRef
		var name string
		var parent uint64
		found := false
		key := searchKey{
			treeID: rootTreeObjectID, minObjectID: id, maxObjectID: id,
			minType: rootBackrefKey, maxType: rootBackrefKey, maxOffset: ^uint64(0), maxTransID: ^uint64(0),
		}
		err := treeSearch(f, fsPath, key, func(it item) error {
			rest, err := decodeItem(it.data, &ref)
			if err == nil {
				name, err = itemName(rest, ref.NameLen)
			}
			parent, found = it.offset, true
			return err
		})
		if err != nil {
			return "", err
		}
		if !found {
			return "", &os.PathError{Op: "resolve subvolume path", Path: fsPath, Err: fmt.Errorf("subvolume id %d: %w", id, os.ErrNotExist)}
		}
		dir, err := inoPath(f, fsPath, parent, ref.DirID)
		if err != nil {
			return "", err
		}
		parts = append([]string{path.Join(dir, name)}, parts...)
		id = parent
		if len(parts) > 4096 {
			return "", fmt.Errorf("resolve subvolume path %s: loop in back references", fsPath)
		}
	}
	return path.Join(parts...), nil
}

// DefaultID returns the id of the default subvolume (the one mounted
// without subvol=/subvolid=): the "default" entry of the root tree
// directory, or 5 (the top level) when there is none.
func DefaultID(fsPath string) (uint64, error) {
	f, err := openDir("get default subvolume", fsPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	id := uint64(fsTreeObjectID)
	key := searchKey{
		treeID: rootTreeObjectID, minObjectID: rootTreeDirObjectID, maxObjectID: rootTreeDirObjectID,
		minType: dirItemKey, maxType: dirItemKey, maxOffset: ^uint64(0), maxTransID: ^uint64(0),
	}
	errFound := errors.New("found")
	err = treeSearch(f, fsPath, key, func(it item) error {
		var di dirItem
		rest, err := decodeItem(it.data, &di)
		if err != nil {
			return fmt.Errorf("get default subvolume %s: dir item: %w", fsPath, err)
		}
		if name, err := itemName(rest, di.NameLen); err == nil && name == "default" {
			id = di.LocationObjectID
			return errFound
		}
		return nil
	})
	if err != nil && err != errFound {
		return 0, err
	}
	return id, nil
}

// SetDefault makes subvolume id the default subvolume of the filesystem
// that holds fsPath (BTRFS_IOC_DEFAULT_SUBVOL); id 5 is the top level.
func SetDefault(fsPath string, id uint64) error {
	f, err := openDir("set default subvolume", fsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	return ioctl(f, "set default subvolume", fsPath, iocDefaultSubvol, unsafe.Pointer(&id))
}

// ReadOnly reports whether the subvolume at path is read-only
// (BTRFS_IOC_SUBVOL_GETFLAGS).
func ReadOnly(path string) (bool, error) {
	f, err := openDir("get subvolume flags", path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var flags uint64
	if err := ioctl(f, "get subvolume flags", path, iocSubvolGetflags, unsafe.Pointer(&flags)); err != nil {
		return false, err
	}
	return flags&subvolRdonly != 0, nil
}

// SetReadOnly sets or clears the read-only flag of the subvolume at path
// (BTRFS_IOC_SUBVOL_SETFLAGS), keeping its other flags.
func SetReadOnly(path string, ro bool) error {
	f, err := openDir("set subvolume flags", path)
	if err != nil {
		return err
	}
	defer f.Close()
	var flags uint64
	if err := ioctl(f, "set subvolume flags", path, iocSubvolGetflags, unsafe.Pointer(&flags)); err != nil {
		return err
	}
	if ro {
		flags |= subvolRdonly
	} else {
		flags &^= subvolRdonly
	}
	return ioctl(f, "set subvolume flags", path, iocSubvolSetflags, unsafe.Pointer(&flags))
}
