package mm

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// secretMachine is a one-node machine with one DMA32 zone of pages pages
// at pfn 4096 (2 MiB aligned: the direct map maps it with 2 MiB entries).
func secretMachine(t testing.TB, pages int64) (*zone.Allocator, *Model) {
	t.Helper()
	a, err := zone.New(zone.Config{NrCPUs: 1, Sysctl: zone.DefaultSysctl(), Nodes: []zone.NodeConfig{{CPUs: []int{0},
		Zones: []zone.ZoneConfig{{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: pages, Present: pages, Managed: pages}}}}}, zone.Options{})
	require.NoError(t, err)
	return a, NewModel(a, 0, func() int64 { return 0 })
}

// secretProc adds a process running as uid with RLIMIT_MEMLOCK of
// limitPages pages (0: the default 8 MiB).
func secretProc(t testing.TB, m *Model, name string, uid int, limitPages int64) *Proc {
	t.Helper()
	p := m.AddProc(memalloc.NewTask(name), false)
	m.SetUID(p, uid)
	if limitPages > 0 {
		p.SetRlimitMemlock(uint64(limitPages) << pageShift)
	}
	return p
}

// secretMap creates a secretmem file of pages pages for p and maps it
// shared and writable.
func secretMap(t testing.TB, m *Model, p *Proc, pages int64) (*File, uint64) {
	t.Helper()
	f, err := m.MemfdSecret(p, 0)
	require.NoError(t, err)
	require.NoError(t, m.SecretTruncate(f, pages<<pageShift))
	addr, err := m.Mmap(p, MmapRequest{Len: pages << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: f})
	require.NoError(t, err)
	return f, addr
}

// touch writes page i of the mapping at addr and returns the outcome.
func touch(t testing.TB, m *Model, p *Proc, addr uint64, i int64) AccessResult {
	t.Helper()
	res, err := m.Access(p, addr+uint64(i)<<pageShift, true, uint64(i)+1)
	require.NoError(t, err)
	return res
}

func freePages(a *zone.Allocator) int64 {
	return a.Nodes()[0].Zone(gfp.ZoneDMA32).State(zone.ZoneNrFreePages)
}

// secretPage returns the folio at index idx of f.
func secretPage(m *Model, f *File, idx int64) *Folio {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f.pages[idx]
}

// failHooks is fault injection: fail says which requests fail.
type failHooks struct {
	fail func(mask gfp.Mask, order zone.Order) bool
}

func (failHooks) MightAlloc(*memalloc.Task, gfp.Mask) {}
func (h failHooks) ShouldFailAlloc(_ *memalloc.Task, mask gfp.Mask, order zone.Order) bool {
	return h.fail(mask, order)
}
func (failHooks) PostAlloc(*memalloc.Task, zone.Page, zone.Order, gfp.Mask) {}
func (failHooks) FreePrepare(*memalloc.Task, zone.Page, zone.Order)         {}

// TestMemfdSecretFlags checks memfd_secret's argument check: O_CLOEXEC
// alone is accepted, anything else is EINVAL; each file counts in
// secretmem_users until released.
//
// Reference: mm/secretmem.c:SYSCALL_DEFINE1(memfd_secret).
func TestMemfdSecretFlags(t *testing.T) {
	_, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 1000, 0)
	for _, tc := range []struct {
		name  string
		flags uint
		err   error
	}{
		{"no flags", 0, nil},
		{"O_CLOEXEC", OCloexec, nil},
		{"O_NONBLOCK", 0x800, EINVAL},
		{"O_CLOEXEC and another bit", OCloexec | 1, EINVAL},
	} {
		f, err := m.MemfdSecret(p, tc.flags)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, tc.name)
			require.Nil(t, f, tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		assert.True(t, f.IsSecretmem(), tc.name)
		assert.Equal(t, gfp.HighUser, f.GFPMask(), "%s: GFP_HIGHUSER, not movable", tc.name)
		assert.Equal(t, int64(0), m.SecretSize(f), tc.name)
	}
	assert.Equal(t, int64(2), m.SecretStats().Users)
}

// TestSecretMmap checks secretmem_mmap_prepare: a private mapping is
// EINVAL; a shared one is made VM_DONTDUMP.
//
// Reference: mm/secretmem.c:secretmem_mmap_prepare().
func TestSecretMmap(t *testing.T) {
	_, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 1000, 0)
	f, err := m.MemfdSecret(p, OCloexec)
	require.NoError(t, err)
	require.NoError(t, m.SecretTruncate(f, 4<<pageShift))
	_, err = m.Mmap(p, MmapRequest{Len: 4 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapPrivate, File: f})
	require.ErrorIs(t, err, EINVAL)
	require.Empty(t, m.Mappings(p))

	addr, err := m.Mmap(p, MmapRequest{Len: 4 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: f})
	require.NoError(t, err)
	maps := m.Mappings(p)
	require.Len(t, maps, 1)
	assert.Equal(t, addr, maps[0].Start)
	assert.NotZero(t, maps[0].Flags&VMDontDump, "VM_DONTDUMP: %s", maps[0].Flags)
	assert.NotZero(t, maps[0].Flags&VMShared, "VM_SHARED: %s", maps[0].Flags)
	assert.Zero(t, maps[0].Flags&VMLocked, "7.2 no longer sets VM_LOCKED: %s", maps[0].Flags)
}

// TestSecretFault checks what a fault of a secretmem mapping allocates
// and does with the page: an order-0 GFP_HIGHUSER|__GFP_ZERO page
// (unmovable), charged to the owner's locked_vm, unevictable, removed from
// the direct map, counted in the file rss; the word written reads back,
// and a page never written reads zero.
//
// Reference: mm/secretmem.c:secretmem_fault(), secretmem_file_create().
func TestSecretFault(t *testing.T) {
	a, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 1000, 0)
	var mu sync.Mutex
	var events []zone.Event
	a.Subscribe(func(e zone.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	f, addr := secretMap(t, m, p, 4)
	splits := a.Event(zone.VMDirectMapLevel2Splits)

	res := touch(t, m, p, addr, 0)
	require.Equal(t, AccessOK, res.Outcome, "%+v", res)
	fo := secretPage(m, f, 0)
	require.NotNil(t, fo)
	pfn := fo.Page().PFN()

	mu.Lock()
	var alloc *zone.Event
	for i := range events {
		if e := &events[i]; e.Kind == zone.EvPageAlloc && !e.NoPage && e.PFN == pfn {
			alloc = e
		}
	}
	mu.Unlock()
	require.NotNil(t, alloc, "mm_page_alloc of the secretmem page")
	assert.Equal(t, gfp.HighUser|gfp.Zero|gfp.Comp, alloc.Mask, "mask %s", alloc.Mask)
	assert.Equal(t, zone.Order(0), alloc.Order)
	assert.Equal(t, gfp.MigrateUnmovable, alloc.Migratetype)

	assert.True(t, fo.Secretmem())
	assert.NotZero(t, fo.Flags&PGUnevictable)
	m.mu.Lock()
	lru := fo.lru
	m.mu.Unlock()
	assert.Equal(t, LRUUnevictable, lru)
	nd := a.Nodes()[0]
	assert.Equal(t, int64(1), nd.State(zone.NodeNrUnevictable))
	assert.Equal(t, int64(1), nd.State(zone.NodeNrFilePages))
	assert.True(t, a.DirectMap().Invalid(pfn), "the page is off the direct map")
	assert.Equal(t, splits+1, a.Event(zone.VMDirectMapLevel2Splits), "its 2 MiB entry was split")
	assert.Equal(t, int64(1), p.User().LockedVM())
	assert.Equal(t, int64(1), p.MM.Counter(MMFilePages), "secretmem counts as MM_FILEPAGES")

	res, err := m.Access(p, addr, false, 0)
	require.NoError(t, err)
	assert.Equal(t, AccessOK, res.Outcome)
	assert.Equal(t, uint64(1), res.Value, "the word written reads back")
	res, err = m.Access(p, addr+pageSize, false, 0)
	require.NoError(t, err)
	assert.Equal(t, AccessOK, res.Outcome)
	assert.Equal(t, uint64(0), res.Value, "a new page reads zero")

	st := m.SecretStats()
	assert.Equal(t, int64(2), st.Faults)
	assert.Equal(t, int64(2), st.PagesInUse)
	assert.Equal(t, int64(2), st.Accounted)
	assert.Equal(t, int64(2), st.DirectMapInvalid)
	require.NoError(t, a.CheckInvariants())
}

// TestSecretRlimitMemlock checks 7.2's charge: every page is charged to
// the file owner's locked_vm against the faulting task's RLIMIT_MEMLOCK;
// the fault over the limit is SIGBUS and charges nothing; two processes of
// one user share its budget; root gets no CAP_IPC_LOCK bypass; a process
// of another user mapping the file charges the owner, against its own
// limit.
//
// Reference: mm/secretmem.c:__secretmem_account_pages(), secretmem_fault().
func TestSecretRlimitMemlock(t *testing.T) {
	t.Run("over the limit is SIGBUS", func(t *testing.T) {
		a, m := secretMachine(t, 4096)
		p := secretProc(t, m, "p", 1000, 2)
		f, addr := secretMap(t, m, p, 4)
		require.Equal(t, AccessOK, touch(t, m, p, addr, 0).Outcome)
		require.Equal(t, AccessOK, touch(t, m, p, addr, 1).Outcome)
		a.DrainAllPages(p.Task)
		free := freePages(a)
		res := touch(t, m, p, addr, 2)
		a.DrainAllPages(p.Task)
		assert.Equal(t, AccessSIGBUS, res.Outcome)
		assert.Equal(t, VMFaultSIGBUS, res.Fault)
		assert.Equal(t, int64(2), p.User().LockedVM(), "the failed charge is not kept")
		assert.Equal(t, int64(2), m.CachedPages(f))
		assert.Equal(t, free, freePages(a), "the page allocated for the fault was freed")
		assert.Equal(t, int64(1), m.SecretStats().SIGBUSRlimit)
	})
	t.Run("one user, two processes, one budget", func(t *testing.T) {
		_, m := secretMachine(t, 4096)
		p := secretProc(t, m, "p", 1000, 3)
		q := secretProc(t, m, "q", 1000, 3)
		_, pa := secretMap(t, m, p, 4)
		_, qa := secretMap(t, m, q, 4)
		require.Equal(t, AccessOK, touch(t, m, p, pa, 0).Outcome)
		require.Equal(t, AccessOK, touch(t, m, p, pa, 1).Outcome)
		require.Equal(t, AccessOK, touch(t, m, q, qa, 0).Outcome)
		assert.Equal(t, AccessSIGBUS, touch(t, m, q, qa, 1).Outcome, "q's user has 3 pages charged already")
		assert.Equal(t, int64(3), q.User().LockedVM())
		assert.Same(t, p.User(), q.User())
		assert.Zero(t, p.MM.LockedVM(), "the mm's locked_vm is not what secretmem charges")
	})
	t.Run("root has no bypass", func(t *testing.T) {
		_, m := secretMachine(t, 4096)
		p := secretProc(t, m, "root", 0, 1)
		require.True(t, p.capable(capIPCLock))
		_, addr := secretMap(t, m, p, 4)
		require.Equal(t, AccessOK, touch(t, m, p, addr, 0).Outcome)
		assert.Equal(t, AccessSIGBUS, touch(t, m, p, addr, 1).Outcome)
		assert.Equal(t, int64(1), p.User().LockedVM())
	})
	t.Run("the owner is charged against the faulting task's limit", func(t *testing.T) {
		_, m := secretMachine(t, 4096)
		owner := secretProc(t, m, "owner", 1000, 1)
		other := secretProc(t, m, "other", 1001, 2)
		f, err := m.MemfdSecret(owner, 0)
		require.NoError(t, err)
		require.NoError(t, m.SecretTruncate(f, 4<<pageShift))
		addr, err := m.Mmap(other, MmapRequest{Len: 4 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: f})
		require.NoError(t, err)
		require.Equal(t, AccessOK, touch(t, m, other, addr, 0).Outcome)
		require.Equal(t, AccessOK, touch(t, m, other, addr, 1).Outcome, "other's limit is 2 pages, owner's 1")
		assert.Equal(t, AccessSIGBUS, touch(t, m, other, addr, 2).Outcome)
		assert.Equal(t, int64(2), owner.User().LockedVM())
		assert.Zero(t, other.User().LockedVM())
	})
}

// TestSecretTruncate checks the size rules: set once (a change when the
// size is non-zero is EINVAL, even to the same size), a fault at or past
// i_size is SIGBUS, and a size not page aligned backs its last partial
// page, as i_size does.
//
// Reference: mm/secretmem.c:secretmem_setattr(), secretmem_fault().
func TestSecretTruncate(t *testing.T) {
	_, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 1000, 0)
	f, err := m.MemfdSecret(p, 0)
	require.NoError(t, err)
	addr, err := m.Mmap(p, MmapRequest{Len: 4 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: f})
	require.NoError(t, err)
	assert.Equal(t, AccessSIGBUS, touch(t, m, p, addr, 0).Outcome, "size 0: every page is past i_size")

	require.ErrorIs(t, m.SecretTruncate(f, -1), EINVAL)
	require.NoError(t, m.SecretTruncate(f, 0), "0 to 0 is no change of a non-zero size")
	require.NoError(t, m.SecretTruncate(f, 2<<pageShift+1))
	require.ErrorIs(t, m.SecretTruncate(f, 2<<pageShift+1), EINVAL, "the same size again")
	require.ErrorIs(t, m.SecretTruncate(f, 4<<pageShift), EINVAL)
	require.ErrorIs(t, m.SecretTruncate(f, 0), EINVAL)
	assert.Equal(t, int64(2<<pageShift+1), m.SecretSize(f))

	for i, want := range []Outcome{AccessOK, AccessOK, AccessOK, AccessSIGBUS} {
		assert.Equal(t, want, touch(t, m, p, addr, int64(i)).Outcome, "page %d", i)
	}
	st := m.SecretStats()
	assert.Equal(t, int64(2), st.SIGBUSBeyondSize)
	assert.Equal(t, int64(3), st.PagesInUse)
	assert.Zero(t, st.SIGBUSRlimit)

	n, err := m.AccessFile(p, m.NewFile("other", 0), 0, 1, false)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.ErrorIs(t, m.SecretTruncate(m.NewFile("plain", 0), 4096), zone.ErrInvalid, "not a secretmem file")
}

// TestSecretRelease checks the release: a file is released when its fd is
// closed and its last mapping is gone, in either order; then its pages are
// mapped again in the direct map (the splits stay), zeroed and freed, its
// charge given back, and secretmem_users drops.
//
// Reference: mm/secretmem.c:secretmem_release(), secretmem_free_folio(),
// secretmem_unaccount_all_folios().
func TestSecretRelease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		closeFirst bool
	}{
		{"close, then munmap", true},
		{"munmap, then close", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, m := secretMachine(t, 4096)
			p := secretProc(t, m, "p", 1000, 0)
			a.DrainAllPages(p.Task)
			start := freePages(a)
			f, addr := secretMap(t, m, p, 8)
			var pfns []zone.PFN
			for i := int64(0); i < 8; i++ {
				require.Equal(t, AccessOK, touch(t, m, p, addr, i).Outcome)
				pfns = append(pfns, secretPage(m, f, i).Page().PFN())
			}
			k4, m2, g1 := a.DirectMap().Counts()
			splits := a.Event(zone.VMDirectMapLevel2Splits)
			require.Equal(t, int64(8), p.User().LockedVM())

			if tc.closeFirst {
				require.NoError(t, m.SecretClose(p.Task, f))
				assert.Equal(t, int64(8), p.User().LockedVM(), "mapped: not released")
				assert.Equal(t, int64(1), m.SecretStats().Users)
				require.NoError(t, m.Munmap(p, addr, 8<<pageShift))
			} else {
				require.NoError(t, m.Munmap(p, addr, 8<<pageShift))
				assert.Equal(t, int64(8), p.User().LockedVM(), "open: not released")
				assert.Equal(t, int64(8), m.CachedPages(f), "the page cache outlives the mapping")
				require.NoError(t, m.SecretClose(p.Task, f))
			}
			require.ErrorIs(t, m.SecretClose(p.Task, f), zone.ErrInvalid, "a second close")

			assert.Zero(t, p.User().LockedVM())
			assert.Zero(t, m.CachedPages(f))
			for _, pfn := range pfns {
				assert.False(t, a.DirectMap().Invalid(pfn), "pfn %#x is mapped again", pfn)
			}
			k4b, m2b, g1b := a.DirectMap().Counts()
			assert.Equal(t, [3]int64{k4, m2, g1}, [3]int64{k4b, m2b, g1b}, "the splits stay")
			assert.Equal(t, splits, a.Event(zone.VMDirectMapLevel2Splits))
			nd := a.Nodes()[0]
			assert.Zero(t, nd.State(zone.NodeNrUnevictable))
			assert.Zero(t, nd.State(zone.NodeNrFilePages))
			st := m.SecretStats()
			assert.Zero(t, st.Users)
			assert.Zero(t, st.PagesInUse)
			assert.Zero(t, st.Accounted)
			assert.Zero(t, st.DirectMapInvalid)
			a.DrainAllPages(p.Task)
			assert.Equal(t, start, freePages(a), "every page is back, the page table too")
			require.NoError(t, a.CheckInvariants())

			_, err := m.Mmap(p, MmapRequest{Len: pageSize, Prot: ProtRead, Flags: MapShared, File: f})
			require.ErrorIs(t, err, zone.ErrInvalid, "a closed file cannot be mapped")
		})
	}
}

// TestSecretExitReleases checks that a process's exit unmaps its
// secretmem mapping and so releases a closed file.
//
// Reference: mm/mmap.c:exit_mmap(), mm/secretmem.c:secretmem_release().
func TestSecretExitReleases(t *testing.T) {
	_, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 1000, 0)
	user := p.User()
	f, addr := secretMap(t, m, p, 4)
	require.Equal(t, AccessOK, touch(t, m, p, addr, 0).Outcome)
	require.NoError(t, m.SecretClose(p.Task, f))
	require.Equal(t, int64(1), user.LockedVM())
	require.NoError(t, m.Exit(p))
	assert.Zero(t, user.LockedVM())
	assert.Zero(t, m.SecretStats().Users)
}

// TestSecretNeverMigrated checks that compaction's migration leaves a
// secretmem folio where it is: secretmem_migrate_folio refuses.
//
// Reference: mm/secretmem.c:secretmem_migrate_folio().
func TestSecretNeverMigrated(t *testing.T) {
	a, m := secretMachine(t, 8192)
	p := secretProc(t, m, "p", 1000, 0)
	f, addr := secretMap(t, m, p, 4)
	for i := int64(0); i < 4; i++ {
		require.Equal(t, AccessOK, touch(t, m, p, addr, i).Outcome)
	}
	before := secretPage(m, f, 0).Page()
	z := a.Nodes()[0].Zone(gfp.ZoneDMA32)
	target := func(int64) (zone.Page, bool) {
		pages, _, _ := z.IsolateFreePages(z.EndPFN()-512, z.EndPFN(), 1)
		if len(pages) == 0 {
			return zone.Page{}, false
		}
		return pages[0], true
	}
	st, old := m.Migrate(0, z.StartPFN(), z.EndPFN()-512, MigrateSync, true, 1024, target)
	assert.Empty(t, old)
	assert.Zero(t, st.Succeeded)
	assert.Equal(t, before, secretPage(m, f, 0).Page())
}

// TestSecretFaultOOM checks that an allocation failure at fault time is
// VM_FAULT_OOM, with nothing charged.
//
// Reference: mm/secretmem.c:secretmem_fault() (folio_alloc failure).
func TestSecretFaultOOM(t *testing.T) {
	a, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 1000, 0)
	_, addr := secretMap(t, m, p, 4)
	require.Equal(t, AccessOK, touch(t, m, p, addr, 0).Outcome)
	a.SetHooks(failHooks{fail: func(mask gfp.Mask, _ zone.Order) bool { return mask == gfp.HighUser|gfp.Zero|gfp.Comp }})
	res := touch(t, m, p, addr, 1)
	assert.Equal(t, AccessOOM, res.Outcome)
	assert.ErrorIs(t, res.Err, zone.ErrNoMemory)
	assert.Equal(t, int64(1), p.User().LockedVM())
	assert.Equal(t, int64(1), m.SecretStats().OOMFaults)
}

// TestSecretConfig checks SetSecretConfig's refusals: an unknown policy
// or a negative pool is EINVAL, a change while a secretmem file exists
// EBUSY, a boot pool larger than memory an error wrapping ErrNoMemory,
// each leaving the configuration as it was.
//
// Reference: mm/secretmem.c:secretmem_init().
func TestSecretConfig(t *testing.T) {
	a, m := secretMachine(t, 4096)
	p := secretProc(t, m, "p", 1000, 0)
	a.DrainAllPages(p.Task)
	start := freePages(a)
	require.ErrorIs(t, m.SetSecretConfig(SecretConfig{Policy: 7}), EINVAL)
	require.ErrorIs(t, m.SetSecretConfig(SecretConfig{Policy: SecretBootPool, PoolPages: -1}), EINVAL)
	require.ErrorIs(t, m.SetSecretConfig(SecretConfig{Policy: SecretBootPool, PoolPages: 8192}), zone.ErrNoMemory)
	a.DrainAllPages(p.Task)
	assert.Equal(t, start, freePages(a), "the partial pool was freed")
	assert.Zero(t, m.SecretStats().DirectMapInvalid)
	assert.Equal(t, SecretUpstream, m.SecretStats().Policy)

	require.NoError(t, m.SetSecretConfig(SecretConfig{Policy: SecretBootPool, PoolPages: 600}))
	st := m.SecretStats()
	assert.Equal(t, int64(600), st.PoolPages)
	assert.Equal(t, int64(600), st.PoolFree)
	assert.Equal(t, int64(600), st.DirectMapInvalid)
	f, err := m.MemfdSecret(p, 0)
	require.NoError(t, err)
	require.ErrorIs(t, m.SetSecretConfig(SecretConfig{Policy: SecretUpstream}), EBUSY)
	require.NoError(t, m.SecretClose(p.Task, f))
	require.NoError(t, m.SetSecretConfig(SecretConfig{Policy: SecretUpstream}))
	assert.Zero(t, m.SecretStats().DirectMapInvalid, "the old pool is mapped again and freed")
	a.DrainAllPages(p.Task)
	assert.Equal(t, start, freePages(a))

	for pol, name := range map[SecretPolicy]string{SecretUpstream: "upstream", SecretPMDPool: "pmd-pool",
		SecretBootPool: "boot-pool", SecretReserveAtMmap: "reserve-at-mmap", 9: "SecretPolicy(9)"} {
		assert.Equal(t, name, pol.String())
	}
}

// TestSecretBootPoolReuse checks that released boot-pool pages go back to
// the pool, still off the direct map, and come out zeroed.
//
// Reference: the v16 patch's pool (not in 7.2).
func TestSecretBootPoolReuse(t *testing.T) {
	a, m := secretMachine(t, 4096)
	require.NoError(t, m.SetSecretConfig(SecretConfig{Policy: SecretBootPool, PoolPages: 4}))
	p := secretProc(t, m, "p", 1000, 0)
	f, addr := secretMap(t, m, p, 4)
	for i := int64(0); i < 4; i++ {
		require.Equal(t, AccessOK, touch(t, m, p, addr, i).Outcome)
	}
	pfn := secretPage(m, f, 0).Page().PFN()
	require.NoError(t, m.SecretClose(p.Task, f))
	require.NoError(t, m.Munmap(p, addr, 4<<pageShift))
	st := m.SecretStats()
	assert.Equal(t, int64(4), st.PoolFree)
	assert.Equal(t, int64(4), st.DirectMapInvalid)
	assert.True(t, a.DirectMap().Invalid(pfn))
	assert.Zero(t, p.User().LockedVM())

	_, addr = secretMap(t, m, p, 4)
	res, err := m.Access(p, addr, false, 0)
	require.NoError(t, err)
	assert.Equal(t, AccessOK, res.Outcome)
	assert.Zero(t, res.Value, "a pool page comes back zeroed")
	assert.Equal(t, int64(3), m.SecretStats().PoolFree)
}

// TestSecretPMDPool checks the pmd-pool proposal: the first fault takes a
// 2 MiB block and removes all of it from the direct map (one split); the
// next faults are served from it; with no block to be had the fault falls
// back to an order-0 page; the release frees each block whole.
//
// Reference: the seed-004 proposal (not in 7.2); mm/secretmem.c:secretmem_fault().
func TestSecretPMDPool(t *testing.T) {
	a, m := secretMachine(t, 4096)
	require.NoError(t, m.SetSecretConfig(SecretConfig{Policy: SecretPMDPool}))
	p := secretProc(t, m, "p", 1000, 0)
	a.DrainAllPages(p.Task)
	start := freePages(a)
	splits := a.Event(zone.VMDirectMapLevel2Splits)
	f, addr := secretMap(t, m, p, 8)
	for i := int64(0); i < 4; i++ {
		require.Equal(t, AccessOK, touch(t, m, p, addr, i).Outcome)
	}
	st := m.SecretStats()
	assert.Equal(t, int64(1), st.PMDBlocks)
	assert.Equal(t, int64(512), st.PoolPages)
	assert.Equal(t, int64(508), st.PoolFree)
	assert.Equal(t, int64(512), st.DirectMapInvalid)
	assert.Equal(t, int64(4), st.Accounted, "charged per page handed out")
	assert.Equal(t, splits+1, a.Event(zone.VMDirectMapLevel2Splits), "one split for the whole block")
	first := secretPage(m, f, 0).Page().PFN()
	assert.Zero(t, first%512, "the block is 2 MiB aligned")
	assert.Equal(t, first+3, secretPage(m, f, 3).Page().PFN())

	// A second file finds no block (fault injection): order 0 instead.
	a.SetHooks(failHooks{fail: func(_ gfp.Mask, order zone.Order) bool { return order == 9 }})
	g, gaddr := secretMap(t, m, p, 2)
	require.Equal(t, AccessOK, touch(t, m, p, gaddr, 0).Outcome)
	assert.Equal(t, int64(1), m.SecretStats().PMDFallbacks)
	assert.True(t, a.DirectMap().Invalid(secretPage(m, g, 0).Page().PFN()))
	a.SetHooks(nil)

	require.NoError(t, m.SecretClose(p.Task, f))
	require.NoError(t, m.SecretClose(p.Task, g))
	require.NoError(t, m.Munmap(p, addr, 8<<pageShift))
	require.NoError(t, m.Munmap(p, gaddr, 2<<pageShift))
	st = m.SecretStats()
	assert.Zero(t, st.PoolPages)
	assert.Zero(t, st.DirectMapInvalid)
	assert.Zero(t, p.User().LockedVM())
	a.DrainAllPages(p.Task)
	assert.Equal(t, start, freePages(a))
	require.NoError(t, a.CheckInvariants())
}

// TestSecretReserveAtMmap checks the counter-proposal: mmap reserves the
// whole length (charged, off the direct map), so RLIMIT_MEMLOCK fails the
// mmap with EAGAIN and a lack of memory with ENOMEM, each undoing the
// reservation; the faults then take reserved pages; a second mapping of a
// backed file reserves nothing more; release frees the reserve left.
//
// Reference: the counter-proposal (not in 7.2); mm/mmap.c:mlock_future_ok().
func TestSecretReserveAtMmap(t *testing.T) {
	a, m := secretMachine(t, 4096)
	require.NoError(t, m.SetSecretConfig(SecretConfig{Policy: SecretReserveAtMmap}))
	p := secretProc(t, m, "p", 1000, 6)
	a.DrainAllPages(p.Task)
	start := freePages(a)

	f, addr := secretMap(t, m, p, 4)
	st := m.SecretStats()
	assert.Equal(t, int64(4), st.Reserved)
	assert.Equal(t, int64(4), st.DirectMapInvalid)
	assert.Equal(t, int64(4), p.User().LockedVM(), "charged at mmap")
	require.Equal(t, AccessOK, touch(t, m, p, addr, 0).Outcome)
	assert.Equal(t, int64(3), m.SecretStats().Reserved)
	assert.Equal(t, int64(4), p.User().LockedVM(), "the fault charges nothing more")

	addr2, err := m.Mmap(p, MmapRequest{Len: 4 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: f})
	require.NoError(t, err, "the file is backed up to the length already")
	assert.Equal(t, int64(4), p.User().LockedVM())

	g, err := m.MemfdSecret(p, 0)
	require.NoError(t, err)
	require.NoError(t, m.SecretTruncate(g, 4<<pageShift))
	_, err = m.Mmap(p, MmapRequest{Len: 4 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: g})
	require.ErrorIs(t, err, EAGAIN, "4 more pages go over the 6-page limit")
	assert.Equal(t, int64(4), p.User().LockedVM())

	a.SetHooks(failHooks{fail: func(mask gfp.Mask, _ zone.Order) bool { return mask == gfp.HighUser|gfp.Zero|gfp.Comp }})
	_, err = m.Mmap(p, MmapRequest{Len: 2 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: g})
	require.ErrorIs(t, err, ENOMEM)
	require.ErrorIs(t, err, zone.ErrNoMemory)
	a.SetHooks(nil)
	st = m.SecretStats()
	assert.Equal(t, map[Errno]int64{EAGAIN: 1, ENOMEM: 1}, st.MmapFailures)
	assert.Equal(t, int64(4), p.User().LockedVM())
	assert.Equal(t, int64(4), st.DirectMapInvalid)
	assert.Zero(t, st.SIGBUSFaults)

	// secretMunmap gives back what a mapping failing after it reserved.
	require.NoError(t, m.secretMmap(p, g, 2<<pageShift))
	assert.Equal(t, int64(6), p.User().LockedVM())
	m.secretMunmap(g, 2<<pageShift)
	assert.Equal(t, int64(4), p.User().LockedVM())
	assert.Equal(t, int64(3), m.SecretStats().Reserved)

	require.NoError(t, m.SecretClose(p.Task, f))
	require.NoError(t, m.SecretClose(p.Task, g))
	require.NoError(t, m.Munmap(p, addr, 4<<pageShift))
	require.NoError(t, m.Munmap(p, addr2, 4<<pageShift))
	st = m.SecretStats()
	assert.Zero(t, st.Reserved)
	assert.Zero(t, st.DirectMapInvalid)
	assert.Zero(t, p.User().LockedVM())
	a.DrainAllPages(p.Task)
	assert.Equal(t, start, freePages(a))
	require.NoError(t, a.CheckInvariants())
}

// secretRun is what one policy made of the comparison workload.
type secretRun struct {
	stats     SecretStats
	outcomes  map[string]string // per process: "ok", "SIGBUS at page N", or the mmap error
	lockedVM  map[int]int64     // per uid, after the workload
	level2    int64             // direct_map_level2_splits the workload caused
	level3    int64
	leftovers int64 // pages not back after every file is released
}

// runSecretWorkload runs the comparison workload under policy on a fresh
// machine of 32768 pages that has run for a while: half of memory was
// allocated unmovable and all but one page in 64 of it is still in use, so
// free order-0 pages are scattered over 32 pageblocks while the other half
// of memory is free in 2 MiB blocks. Then three processes each create,
// size, map and write 64 pages of secretmem: a and b of uid 1000, c of uid
// 1001 with RLIMIT_MEMLOCK of 32 pages. The boot pool (reserved before the
// machine's use) has 100 pages.
func runSecretWorkload(t *testing.T, policy SecretPolicy) secretRun {
	t.Helper()
	a, m := secretMachine(t, 32768)
	require.NoError(t, m.SetSecretConfig(SecretConfig{Policy: policy, PoolPages: 100}))
	filler := memalloc.NewTask("filler")
	var held []zone.Page
	for i := 0; i < 16384; i++ {
		pg, err := a.AllocPages(filler, gfp.Kernel, 0)
		require.NoError(t, err)
		held = append(held, pg)
	}
	for i := 0; i < len(held); i += 64 {
		require.NoError(t, a.FreePages(filler, held[i], 0))
	}
	a.DrainAllPages(filler)
	start := freePages(a)
	l2, l3 := a.Event(zone.VMDirectMapLevel2Splits), a.Event(zone.VMDirectMapLevel3Splits)

	run := secretRun{outcomes: map[string]string{}, lockedVM: map[int]int64{}}
	type job struct {
		p    *Proc
		f    *File
		addr uint64
	}
	var jobs []job
	for _, pc := range []struct {
		name  string
		uid   int
		limit int64
	}{{"a", 1000, 0}, {"b", 1000, 0}, {"c", 1001, 32}} {
		p := secretProc(t, m, pc.name, pc.uid, pc.limit)
		f, err := m.MemfdSecret(p, OCloexec)
		require.NoError(t, err)
		require.NoError(t, m.SecretTruncate(f, 64<<pageShift))
		addr, err := m.Mmap(p, MmapRequest{Len: 64 << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: f})
		jobs = append(jobs, job{p, f, addr})
		if err != nil {
			var e Errno
			require.True(t, errors.As(err, &e), "%v", err)
			run.outcomes[pc.name] = "mmap " + e.Name()
			continue
		}
		run.outcomes[pc.name] = "ok"
		for i := int64(0); i < 64; i++ {
			if res := touch(t, m, p, addr, i); res.Outcome != AccessOK {
				run.outcomes[pc.name] = fmt.Sprintf("%s at page %d", res.Outcome, i)
				break
			}
		}
	}
	run.stats = m.SecretStats()
	run.level2 = a.Event(zone.VMDirectMapLevel2Splits) - l2
	run.level3 = a.Event(zone.VMDirectMapLevel3Splits) - l3
	for _, uid := range []int{1000, 1001} {
		m.mu.Lock()
		run.lockedVM[uid] = m.userLocked(uid).LockedVM()
		m.mu.Unlock()
	}
	for _, j := range jobs {
		require.NoError(t, m.SecretClose(j.p.Task, j.f))
		if j.addr != 0 {
			require.NoError(t, m.Munmap(j.p, j.addr, 64<<pageShift))
		}
	}
	for _, uid := range []int{1000, 1001} {
		m.mu.Lock()
		require.Zero(t, m.userLocked(uid).LockedVM(), "uid %d after release", uid)
		m.mu.Unlock()
	}
	a.DrainAllPages(filler)
	run.leftovers = start - freePages(a)
	require.NoError(t, a.CheckInvariants())
	return run
}

// TestSecretPolicies compares the four policies on one workload and
// checks what sets each apart:
//   - upstream: pages scattered over the fragmented half split a 2 MiB
//     entry each time they land in a new one; c's charge over its 32-page
//     limit is SIGBUS at its 33rd page;
//   - pmd-pool: one 2 MiB block per file, so far fewer level-2 splits for
//     the same pages; the same SIGBUS for c;
//   - boot-pool: the 100-page pool runs dry in b (SIGBUS), and c, of
//     another user and within its own limit, cannot get a single page;
//   - reserve-at-mmap: c's mmap fails with EAGAIN instead of a fault,
//     and no fault fails.
//
// Reference: mm/secretmem.c:secretmem_fault() (upstream); the seed-004
// debate's proposals.
func TestSecretPolicies(t *testing.T) {
	runs := map[SecretPolicy]secretRun{}
	for _, pol := range []SecretPolicy{SecretUpstream, SecretPMDPool, SecretBootPool, SecretReserveAtMmap} {
		runs[pol] = runSecretWorkload(t, pol)
		r := runs[pol]
		t.Logf("%-15s outcomes %v level2 splits %d level3 %d SIGBUS %d (rlimit %d, pool %d) OOM %d mmap failures %v locked_vm %v",
			pol, r.outcomes, r.level2, r.level3, r.stats.SIGBUSFaults, r.stats.SIGBUSRlimit, r.stats.SIGBUSPoolEmpty,
			r.stats.OOMFaults, r.stats.MmapFailures, r.lockedVM)
	}
	up, pmd, boot, res := runs[SecretUpstream], runs[SecretPMDPool], runs[SecretBootPool], runs[SecretReserveAtMmap]

	assert.Equal(t, map[string]string{"a": "ok", "b": "ok", "c": "SIGBUS at page 32"}, up.outcomes)
	assert.Equal(t, map[int]int64{1000: 128, 1001: 32}, up.lockedVM)
	assert.Equal(t, int64(1), up.stats.SIGBUSRlimit)
	assert.Greater(t, up.level2, int64(10), "upstream's pages are scattered")

	assert.Equal(t, up.outcomes, pmd.outcomes)
	assert.Equal(t, up.lockedVM, pmd.lockedVM)
	assert.Equal(t, int64(3), pmd.stats.PMDBlocks)
	assert.Zero(t, pmd.stats.PMDFallbacks)
	assert.LessOrEqual(t, pmd.level2, int64(3), "one split per 2 MiB block")
	assert.Less(t, pmd.level2, up.level2)

	assert.Equal(t, map[string]string{"a": "ok", "b": "SIGBUS at page 36", "c": "SIGBUS at page 0"}, boot.outcomes)
	assert.Equal(t, int64(2), boot.stats.SIGBUSPoolEmpty)
	assert.Zero(t, boot.stats.SIGBUSRlimit)
	assert.Equal(t, map[int]int64{1000: 100, 1001: 0}, boot.lockedVM)
	assert.Zero(t, boot.level2, "the pool left the direct map before the workload")
	assert.Equal(t, int64(100), boot.stats.PoolPages)

	assert.Equal(t, map[string]string{"a": "ok", "b": "ok", "c": "mmap EAGAIN"}, res.outcomes)
	assert.Equal(t, map[Errno]int64{EAGAIN: 1}, res.stats.MmapFailures)
	assert.Zero(t, res.stats.SIGBUSFaults)
	assert.Equal(t, map[int]int64{1000: 128, 1001: 0}, res.lockedVM)

	for _, pol := range []SecretPolicy{SecretUpstream, SecretPMDPool, SecretBootPool, SecretReserveAtMmap} {
		assert.Zero(t, runs[pol].leftovers, "%s: every page is back (the boot pool's to the pool)", pol)
		assert.Zero(t, runs[pol].stats.OOMFaults, "%s", pol)
		assert.Zero(t, runs[pol].level3, "%s: no 1 GiB entry on this machine", pol)
	}
}

// TestSecretConcurrentFaults has four processes of one user map one file
// and fault all of its pages at once, under each policy: every page ends
// up in the page cache once, charged once and off the direct map once
// (the losers of a race give theirs back, as filemap_add_folio's -EEXIST
// makes the kernel do), and the release returns everything.
//
// Reference: mm/secretmem.c:secretmem_fault() (the -EEXIST retry).
func TestSecretConcurrentFaults(t *testing.T) {
	const pages = 64
	for _, pol := range []SecretPolicy{SecretUpstream, SecretPMDPool, SecretBootPool, SecretReserveAtMmap} {
		t.Run(pol.String(), func(t *testing.T) {
			a, err := zone.New(zone.Config{NrCPUs: 4, Sysctl: zone.DefaultSysctl(), Nodes: []zone.NodeConfig{{CPUs: []int{0, 1, 2, 3},
				Zones: []zone.ZoneConfig{{Type: gfp.ZoneDMA32, StartPFN: 4096, Spanned: 8192, Present: 8192, Managed: 8192}}}}}, zone.Options{})
			require.NoError(t, err)
			m := NewModel(a, 0, func() int64 { return 0 })
			require.NoError(t, m.SetSecretConfig(SecretConfig{Policy: pol, PoolPages: 2 * pages}))
			var procs []*Proc
			var addrs []uint64
			owner := m.AddProc(memalloc.NewTaskWith("owner", memalloc.WithPID(100)), false)
			m.SetUID(owner, 1000)
			f, err := m.MemfdSecret(owner, 0)
			require.NoError(t, err)
			require.NoError(t, m.SecretTruncate(f, pages<<pageShift))
			for w := 0; w < 4; w++ {
				p := m.AddProc(memalloc.NewTaskWith(fmt.Sprintf("w%d", w), memalloc.WithPID(101+w), memalloc.WithCPU(w)), false)
				m.SetUID(p, 1000)
				addr, err := m.Mmap(p, MmapRequest{Len: pages << pageShift, Prot: ProtRead | ProtWrite, Flags: MapShared, File: f})
				require.NoError(t, err)
				procs, addrs = append(procs, p), append(addrs, addr)
			}
			var g errgroup.Group
			for w, p := range procs {
				g.Go(func() error {
					for i := int64(0); i < pages; i++ {
						idx := (i + int64(w)*7) % pages
						res, err := m.Access(p, addrs[w]+uint64(idx)<<pageShift, true, uint64(idx))
						if err != nil {
							return err
						}
						if res.Outcome != AccessOK {
							return fmt.Errorf("w%d page %d: %s (%v)", w, idx, res.Outcome, res.Err)
						}
					}
					return nil
				})
			}
			require.NoError(t, g.Wait())
			st := m.SecretStats()
			assert.Equal(t, int64(pages), m.CachedPages(f))
			assert.Equal(t, int64(pages), owner.User().LockedVM())
			assert.Equal(t, int64(pages), st.PagesInUse)
			assert.Equal(t, int64(pages), st.Faults)
			switch pol {
			case SecretUpstream:
				assert.Equal(t, int64(pages), st.DirectMapInvalid)
			case SecretBootPool:
				assert.Equal(t, int64(pages), st.PoolFree)
			}

			require.NoError(t, m.SecretClose(owner.Task, f))
			for w, p := range procs {
				require.NoError(t, m.Munmap(p, addrs[w], pages<<pageShift))
			}
			st = m.SecretStats()
			assert.Zero(t, owner.User().LockedVM())
			assert.Zero(t, st.Users)
			assert.Zero(t, st.PagesInUse)
			assert.Zero(t, st.Reserved)
			if pol == SecretBootPool {
				assert.Equal(t, int64(2*pages), st.PoolFree)
			} else {
				assert.Zero(t, st.DirectMapInvalid)
			}
			require.NoError(t, a.CheckInvariants())
		})
	}
}
