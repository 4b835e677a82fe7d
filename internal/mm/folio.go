package mm

import (
	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/zone"
)

// PageFlags are the folio flags reclaim reads and writes.
//
// Kernel: include/linux/page-flags.h:enum pageflags.
type PageFlags uint16

// The page flags mmsim models.
const (
	PGReferenced  PageFlags = 1 << iota // PG_referenced: seen accessed once
	PGActive                            // PG_active: on an active LRU list
	PGDirty                             // PG_dirty: must be written before it is freed
	PGWriteback                         // PG_writeback: being written
	PGReclaim                           // PG_reclaim: free as soon as writeback ends
	PGSwapBacked                        // PG_swapbacked: anon or shmem, backed by swap
	PGSwapCache                         // PG_swapcache: has a swap slot
	PGUnevictable                       // PG_unevictable: on the unevictable list
	PGMlocked                           // PG_mlocked
)

// LRUList names an LRU list.
//
// Kernel: include/linux/mmzone.h:enum lru_list.
type LRUList int

// The LRU lists, in the kernel's order.
const (
	LRUInactiveAnon LRUList = iota // LRU_INACTIVE_ANON
	LRUActiveAnon                  // LRU_ACTIVE_ANON
	LRUInactiveFile                // LRU_INACTIVE_FILE
	LRUActiveFile                  // LRU_ACTIVE_FILE
	LRUUnevictable                 // LRU_UNEVICTABLE
	NrLRULists
)

var lruNames = [NrLRULists]string{"inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable"}

// String returns the list's name as /proc/meminfo's fields spell it.
func (l LRUList) String() string { return lruNames[l] }

// IsFile reports whether the list holds file folios.
func (l LRUList) IsFile() bool { return l == LRUInactiveFile || l == LRUActiveFile }

// IsActive reports whether the list is an active one.
func (l LRUList) IsActive() bool { return l == LRUActiveAnon || l == LRUActiveFile }

// Folio is one allocated block of user memory: an anonymous folio owned by
// one MM, or a page-cache folio of a File. Its fields are protected by the
// Model's lock.
//
// Kernel: include/linux/mm_types.h:struct folio.
type Folio struct {
	page     zone.Page
	order    zone.Order
	node     *Lruvec
	zoneType gfp.ZoneType

	Flags PageFlags
	// Young is the accessed bit of the folio's page-table entries:
	// folio_referenced() finds it set and clears it.
	Young bool

	// anon marks an anonymous folio (folio_test_anon); it is cleared
	// when the last mapping goes, which releases the folio.
	anon bool
	// rmap lists the entries that map the folio (its mapcount is their
	// number): one for a private page, more after fork.
	rmap  []rmapRef
	file  *File // the file of a page-cache folio
	index int64 // the folio's offset in its file, in pages
	// val is the page's contents, as one word (see Model.Access).
	val uint64

	lru        LRUList
	onLRU      bool
	prev, next *Folio
}

// Page returns the folio's first page.
func (f *Folio) Page() zone.Page { return f.page }

// Order returns the folio's order.
func (f *Folio) Order() zone.Order { return f.order }

// NrPages returns the number of pages in the folio.
func (f *Folio) NrPages() int64 { return 1 << f.order }

// Anon reports whether the folio is anonymous (folio_test_anon).
func (f *Folio) Anon() bool { return f.anon }

// Mapped reports whether any page table maps the folio (folio_mapped).
func (f *Folio) Mapped() bool { return len(f.rmap) > 0 }

// Lazyfree reports an anonymous folio that is not swap-backed: MADV_FREE'd,
// or in a VM_DROPPABLE mapping (folio_test_lazyfree).
func (f *Folio) Lazyfree() bool { return f.anon && f.Flags&PGSwapBacked == 0 }

// File returns the file of a page-cache folio, or nil.
func (f *Folio) File() *File { return f.file }

// IsFileLRU reports whether the folio belongs on the file lists
// (folio_is_file_lru: not swap-backed).
func (f *Folio) IsFileLRU() bool { return f.Flags&PGSwapBacked == 0 }

// lruFor returns the LRU list the folio's flags put it on
// (folio_lru_list).
func (f *Folio) lruFor() LRUList {
	if f.Flags&(PGUnevictable|PGMlocked) != 0 { // !folio_evictable
		return LRUUnevictable
	}
	l := LRUInactiveAnon
	if f.IsFileLRU() {
		l = LRUInactiveFile
	}
	if f.Flags&PGActive != 0 {
		l++
	}
	return l
}

// folioList is an intrusive doubly linked list of folios; the head is the
// most recently added (list_add), the tail the oldest.
type folioList struct {
	head, tail *Folio
	n          int64 // pages
}

func (l *folioList) pushHead(f *Folio) {
	f.prev, f.next = nil, l.head
	if l.head != nil {
		l.head.prev = f
	} else {
		l.tail = f
	}
	l.head = f
	l.n += f.NrPages()
}

func (l *folioList) pushTail(f *Folio) {
	f.prev, f.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = f
	} else {
		l.head = f
	}
	l.tail = f
	l.n += f.NrPages()
}

func (l *folioList) remove(f *Folio) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = nil, nil
	l.n -= f.NrPages()
}
