package mm

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mmsim/mmsim/gfp"
	"github.com/mmsim/mmsim/memalloc"
	"github.com/mmsim/mmsim/zone"
)

// secretmem: memfd_secret(2) files, whose pages are removed from the
// kernel's direct map, charged to their owner's locked_vm, never swapped,
// never migrated.
//
// Besides 7.2's behaviour (SecretUpstream) the model carries the three
// alternatives of the seed-004 debate on where the pages come from, chosen
// machine-wide by SetSecretConfig, so that their direct-map fragmentation
// and failure modes can be compared on one workload (SecretStats).
//
// Locking: the Model's lock protects a secret file's size, state and
// pools, and the boot pool; it is never held across the page allocator or
// across the direct map's calls. secretState.cfgMu orders policy changes
// against memfd_secret: cfgMu, then the Model's lock.

// OCloexec is O_CLOEXEC, the one flag memfd_secret takes.
//
// Kernel: include/uapi/asm-generic/fcntl.h:O_CLOEXEC.
const OCloexec = 0x80000 // 1 << 19: include/uapi/asm-generic/fcntl.h

// secretmemFlagsMask is SECRETMEM_FLAGS_MASK: no modes remain.
const secretmemFlagsMask = 0

// gfpSecretPMDBlock is the mask of the pmd-pool proposal's 2 MiB blocks,
// our reading of it: the mapping's GFP_HIGHUSER; __GFP_NORETRY and
// __GFP_NOWARN because the fault falls back to an order-0 page, so the
// block is opportunistic and must not push reclaim and compaction hard;
// __GFP_ZERO because the block leaves the direct map at once and the
// kernel could not clear its pages afterwards.
const gfpSecretPMDBlock = gfp.HighUser | gfp.Zero | gfp.NoWarn | gfp.NoRetry

// secretPMDOrder is the order of a PMD: HPAGE_PMD_ORDER, 2 MiB.
const secretPMDOrder zone.Order = 9

// SecretPolicy chooses where memfd_secret's pages come from and when the
// RLIMIT_MEMLOCK charge can fail. Every policy charges each page to the
// file owner's locked_vm against the charging task's RLIMIT_MEMLOCK
// (pages), as 7.2's __secretmem_account_pages does (no CAP_IPC_LOCK
// bypass); they differ in the source of the pages, in how many
// direct-map entries those split, and in which call fails.
//
// Kernel: mm/secretmem.c (7.2: SecretUpstream).
type SecretPolicy int

const (
	// SecretUpstream is 7.2 and the default: each fault allocates an
	// order-0 page (the mapping's GFP_HIGHUSER | __GFP_ZERO; failure is
	// VM_FAULT_OOM), charges it (over RLIMIT_MEMLOCK: VM_FAULT_SIGBUS),
	// removes it from the direct map and adds it to the page cache. Each
	// page may split a 1 GiB and a 2 MiB direct-map entry of its own.
	SecretUpstream SecretPolicy = iota
	// SecretPMDPool is the seed's proposal: each file keeps a pool; a
	// fault that finds the pool empty allocates one 2 MiB block
	// (GFP_HIGHUSER | __GFP_ZERO | __GFP_NOWARN | __GFP_NORETRY, our
	// reading of the proposal) and removes the whole block from the
	// direct map at once — at most one 1 GiB and one 2 MiB split for 512
	// pages — then hands its pages out one by one. With no free 2 MiB
	// block the fault falls back to SecretUpstream's order-0 page. The
	// pages not handed out stay in the file's pool, off the direct map,
	// until the file is released, when each block is freed whole.
	SecretPMDPool
	// SecretBootPool is the v16 patch's pool: SecretConfig.PoolPages pages
	// reserved when the policy is set (as at boot, CMA-like; 2 MiB blocks
	// where possible), removed from the direct map up front, and shared by
	// every user. A fault takes a page from it; an empty pool is
	// VM_FAULT_SIGBUS, a hard limit with no fallback, so one user can
	// deplete it for all others. Released pages go back to the pool,
	// zeroed.
	SecretBootPool
	// SecretReserveAtMmap is the counter-proposal: mmap reserves every
	// page of the mapping's length (order-0 pages as upstream, removed
	// from the direct map and charged at once), so mmap fails instead of
	// the fault: over RLIMIT_MEMLOCK with EAGAIN, as mlock_future_ok's
	// callers do, out of memory with ENOMEM. Faults take reserved pages
	// and do not fail. A mapping of a file already backed (faulted or
	// reserved) up to its length reserves nothing more.
	SecretReserveAtMmap
	nrSecretPolicies
)

var secretPolicyNames = [nrSecretPolicies]string{"upstream", "pmd-pool", "boot-pool", "reserve-at-mmap"}

// String returns the policy's name: "upstream", "pmd-pool", "boot-pool" or
// "reserve-at-mmap".
//
// Kernel: none (the names of the seed-004 debate's proposals).
func (p SecretPolicy) String() string {
	if p >= 0 && p < nrSecretPolicies {
		return secretPolicyNames[p]
	}
	return fmt.Sprintf("SecretPolicy(%d)", int(p))
}

// SecretConfig configures secretmem: the policy, and for SecretBootPool
// the size of the pool in pages (ignored by the other policies).
//
// Kernel: mm/secretmem.c (secretmem.enable, always on here); the boot
// pool is the v16 patch's reservation, not in 7.2.
type SecretConfig struct {
	Policy    SecretPolicy
	PoolPages int64
}

// secretState is the machine's secretmem state.
type secretState struct {
	// cfgMu orders SetSecretConfig against memfd_secret: the policy
	// changes only while no secretmem file exists. Lock order: cfgMu,
	// then the Model's lock. Never held by a fault.
	cfgMu sync.RWMutex
	// cfg is the configuration in force. Invariant: cfg.Policy <
	// nrSecretPolicies. Written with cfgMu held for writing; read with
	// cfgMu held.
	cfg SecretConfig
	// users is secretmem_users: the secretmem files not yet released.
	// Atomic, as the kernel's atomic_t: a release drops it holding no
	// lock. Invariant: >= 0.
	users atomic.Int64
	// boot is SecretBootPool's pool. Invariant: empty under any other
	// policy. Protected by the Model's lock.
	boot secretPool
	// stats are the counters SecretStats reports.
	stats secretCounters
}

// secretCounters are secretmem's counters. Atomic, so that the paths
// count without the Model's lock and SecretStats reads without it.
type secretCounters struct {
	inUse, reserved, accounted      atomic.Int64 // gauges, pages
	pmdPoolPages, pmdPoolFree       atomic.Int64 // gauges, pages
	dmInvalid                       atomic.Int64 // gauge, pages
	dmInvalidations                 atomic.Int64
	faults, oom                     atomic.Int64
	sigbusRlimit, sigbusPool        atomic.Int64
	sigbusSize, sigbusDirectMap     atomic.Int64
	pmdBlocks, pmdFallbacks         atomic.Int64
	reserveMisses                   atomic.Int64
	mmapEAGAIN, mmapENOMEM, mmapBad atomic.Int64
}

// secretBlock is a block a pool allocated: freed whole, with its order.
type secretBlock struct {
	page  zone.Page
	order zone.Order
}

// contains reports whether pfn is a page of the block.
func (b secretBlock) contains(pfn zone.PFN) bool {
	return pfn >= b.page.PFN() && pfn < b.page.PFN()+zone.PFN(1)<<b.order
}

// secretPool is a pool of pages off the direct map: the blocks it holds
// and the pages of them not handed out. Protected by the Model's lock.
type secretPool struct {
	blocks []secretBlock
	free   []zone.PFN // LIFO
	pages  int64      // pages of blocks
}

func (p *secretPool) addBlock(b secretBlock) {
	p.blocks = append(p.blocks, b)
	p.pages += 1 << b.order
	for i := zone.PFN(1)<<b.order - 1; ; i-- { // so the lowest pfn goes out first
		p.free = append(p.free, b.page.PFN()+i)
		if i == 0 {
			break
		}
	}
}

func (p *secretPool) take() (zone.PFN, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	pfn := p.free[n-1]
	p.free = p.free[:n-1]
	return pfn, true
}

func (p *secretPool) put(pfn zone.PFN) { p.free = append(p.free, pfn) }

func (p *secretPool) contains(pfn zone.PFN) bool {
	for _, b := range p.blocks {
		if b.contains(pfn) {
			return true
		}
	}
	return false
}

// secretFile is a memfd_secret file's state: the inode's
// secretmem_inode_state and what the policies keep per file.
//
// Kernel: mm/secretmem.c:struct secretmem_inode_state.
type secretFile struct {
	// user is the owner (current_user() at memfd_secret), charged for
	// every page. Invariant: immutable.
	user *User
	// policy is the policy in force at memfd_secret. Invariant:
	// immutable.
	policy SecretPolicy
	// accounted is nr_pages_accounted: the pages charged to user.
	// Atomic, as the kernel's atomic_long_t: charged without the
	// Model's lock. Invariant: >= 0; the pages of the page cache plus
	// the reserved ones, outside a fault or mmap in flight.
	accounted atomic.Int64

	// The rest is protected by the Model's lock.

	// size is i_size in bytes. Invariant: set at most once to non-zero.
	size int64
	// closed: the fd is closed; released: secretmem_release has run.
	// Invariant: released implies closed and no mapping.
	closed, released bool
	// pool is SecretPMDPool's pool of 2 MiB blocks.
	pool secretPool
	// reserved are SecretReserveAtMmap's pages reserved and not yet
	// faulted in: zeroed, off the direct map, charged. reserving counts
	// the pages of reservations in flight.
	reserved  []zone.Page
	reserving int64
	// lens are the lengths, in bytes, of the mappings reserved for; a
	// failed mapping's is removed (secretMunmap).
	lens []int64
}

// Secretmem reports whether f is a page of a memfd_secret file. Such a
// folio is never migrated (its migrate_folio returns -EBUSY: a caller
// that isolated it counts it failed and puts it back), never swapped or
// reclaimed (it is on the unevictable list), and never reaches the
// movable allocation path: it is allocated GFP_HIGHUSER, not movable.
// Called with the Model's lock held.
//
// Kernel: include/linux/secretmem.h:secretmem_mapping(),
// mm/secretmem.c:secretmem_migrate_folio().
func (f *Folio) Secretmem() bool { return f.file != nil && f.file.secret != nil }

// IsSecretmem reports whether file is a memfd_secret file.
//
// Kernel: include/linux/secretmem.h:secretmem_mapping().
func (file *File) IsSecretmem() bool { return file.secret != nil }

// secretAccountPages charges n pages to u's locked_vm if that stays
// within limit pages, and reports whether it did.
//
// Kernel: mm/secretmem.c:__secretmem_account_pages().
func secretAccountPages(u *User, n, limit int64) bool {
	if n == 0 {
		return true
	}
	for {
		cur := u.lockedVM.Load()
		if n > limit-cur {
			return false
		}
		if u.lockedVM.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// account charges n pages of s to its owner against the limit of
// p's RLIMIT_MEMLOCK.
//
// Kernel: mm/secretmem.c:secretmem_account_folio().
func (s *secretFile) account(p *Proc, n int64, st *secretCounters) bool {
	if !secretAccountPages(s.user, n, p.lockLimitPages()) {
		return false
	}
	s.accounted.Add(n)
	st.accounted.Add(n)
	return true
}

// unaccount gives back n pages of s's charge.
//
// Kernel: mm/secretmem.c:__secretmem_unaccount_pages().
func (s *secretFile) unaccount(n int64, st *secretCounters) {
	s.user.lockedVM.Add(-n)
	s.accounted.Add(-n)
	st.accounted.Add(-n)
}

// SetSecretConfig sets the secretmem policy. For SecretBootPool it
// reserves the pool of c.PoolPages pages, as at boot: 2 MiB blocks where
// possible, smaller ones for the rest (GFP_HIGHUSER | __GFP_ZERO, with
// __GFP_NOWARN | __GFP_NORETRY above order 0, which falls back to a smaller
// order), every page removed from the direct map up front. A previous boot
// pool is freed, its pages mapped again.
//
// It fails with EINVAL for an unknown policy or a negative pool size, with
// EBUSY while a secretmem file exists (the policy is a boot choice), and
// with an error wrapping zone.ErrNoMemory if the pool cannot be
// allocated; on error nothing changes. The allocations run as a task of
// their own (the boot's), not the caller's.
//
// Kernel: mm/secretmem.c:secretmem_init() (upstream has no pool); the
// pool is the v16 patch's boot-time reservation.
func (m *Model) SetSecretConfig(c SecretConfig) error {
	if c.Policy < 0 || c.Policy >= nrSecretPolicies {
		return fmt.Errorf("secretmem: policy %d: %w", int(c.Policy), EINVAL)
	}
	if c.Policy != SecretBootPool {
		c.PoolPages = 0
	}
	if c.PoolPages < 0 {
		return fmt.Errorf("secretmem: boot pool of %d pages: %w", c.PoolPages, EINVAL)
	}
	s := &m.secret
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if n := s.users.Load(); n > 0 {
		return fmt.Errorf("secretmem: %d secretmem files exist: the policy is set before any: %w", n, EBUSY)
	}
	t := memalloc.NewTaskWith("swapper/0", memalloc.WithOwner(m.alloc.Owner()))
	var pool secretPool
	if c.PoolPages > 0 {
		var err error
		if pool, err = m.allocSecretBootPool(t, c.PoolPages); err != nil {
			return err
		}
	}
	m.mu.Lock()
	old := s.boot
	s.boot = pool
	s.cfg = c
	m.mu.Unlock()
	return m.freeSecretBlocks(t, old.blocks)
}

// allocSecretBootPool allocates a boot pool of n pages and removes it from
// the direct map.
func (m *Model) allocSecretBootPool(t *memalloc.Task, n int64) (secretPool, error) {
	var pool secretPool
	for rem := n; rem > 0; {
		o := min(secretPMDOrder, zone.Order(bits.Len64(uint64(rem))-1))
		for {
			mask := gfp.HighUser | gfp.Zero
			if o > 0 {
				mask |= gfp.NoWarn | gfp.NoRetry
			}
			pg, err := m.alloc.AllocPages(t, mask, o)
			if err == nil {
				b := secretBlock{pg, o}
				if err := m.secretInvalidateBlock(b); err != nil {
					_ = m.alloc.FreePages(t, pg, o)
					_ = m.freeSecretBlocks(t, pool.blocks)
					return secretPool{}, fmt.Errorf("secretmem: boot pool: %w", err)
				}
				pool.addBlock(b)
				rem -= 1 << o
				break
			}
			if o == 0 {
				_ = m.freeSecretBlocks(t, pool.blocks)
				return secretPool{}, fmt.Errorf("secretmem: boot pool of %d pages: %w", n, err)
			}
			o--
		}
	}
	return pool, nil
}

// secretInvalidateBlock removes every page of b from the direct map; on
// an error it restores those it removed.
//
// Kernel: mm/secretmem.c:secretmem_fault() (set_direct_map_invalid_noflush),
// per page of the block.
func (m *Model) secretInvalidateBlock(b secretBlock) error {
	dm := m.alloc.DirectMap()
	st := &m.secret.stats
	n := zone.PFN(1) << b.order
	for i := zone.PFN(0); i < n; i++ {
		if err := dm.SetInvalid(b.page.PFN() + i); err != nil {
			for j := zone.PFN(0); j < i; j++ {
				_ = dm.SetDefault(b.page.PFN() + j)
			}
			st.dmInvalid.Add(-int64(i))
			return err
		}
		st.dmInvalid.Add(1)
		st.dmInvalidations.Add(1)
	}
	return nil
}

// freeSecretBlocks maps the blocks' pages again and frees the blocks, as
// secretmem_free_folio does for each page: every page of a block is off
// the direct map and back in its pool. Errors are the allocator's or the
// direct map's, already reported by them.
//
// Kernel: mm/secretmem.c:secretmem_free_folio().
func (m *Model) freeSecretBlocks(t *memalloc.Task, blocks []secretBlock) error {
	var errs []error
	dm := m.alloc.DirectMap()
	for _, b := range blocks {
		n := zone.PFN(1) << b.order
		for i := zone.PFN(0); i < n; i++ {
			if err := dm.SetDefault(b.page.PFN() + i); err != nil {
				errs = append(errs, err)
				continue
			}
			m.secret.stats.dmInvalid.Add(-1)
		}
		if err := m.alloc.FreePages(t, b.page, b.order); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// freeSecretPage maps an order-0 secretmem page again and frees it.
//
// Kernel: mm/secretmem.c:secretmem_free_folio(), mm/filemap.c:filemap_free_folio().
func (m *Model) freeSecretPage(t *memalloc.Task, pg zone.Page) error {
	var errs []error
	if err := m.alloc.DirectMap().SetDefault(pg.PFN()); err != nil {
		errs = append(errs, err)
	} else {
		m.secret.stats.dmInvalid.Add(-1)
	}
	if err := m.alloc.FreePages(t, pg, 0); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// MemfdSecret is memfd_secret(2): it creates a secretmem file owned by
// p's user, of size 0, whose page cache allocates GFP_HIGHUSER (not
// movable) and is unevictable, and counts it in secretmem_users. Flags
// other than O_CLOEXEC are EINVAL; a negative (overflowed) user count is
// ENFILE. ENOSYS is not reachable: secretmem.enable is on by default and
// x86-64 can change the direct map.
//
// Kernel: mm/secretmem.c:SYSCALL_DEFINE1(memfd_secret), secretmem_file_create(),
// secretmem_init_inode_priv().
//
// Differences: the file is not an fd: SecretClose closes it. Its name is
// the pseudo file's, "secretmem" (the anon inode is "[secretmem]").
func (m *Model) MemfdSecret(p *Proc, flags uint) (*File, error) {
	if flags&^(secretmemFlagsMask|OCloexec) != 0 {
		return nil, fmt.Errorf("memfd_secret: flags %#x: %w", flags, EINVAL)
	}
	s := &m.secret
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	if s.users.Load() < 0 {
		return nil, fmt.Errorf("memfd_secret: %w", ENFILE)
	}
	m.mu.Lock()
	user := p.user
	m.mu.Unlock()
	f := &File{name: "secretmem", gfp: gfp.HighUser, pages: map[int64]*Folio{},
		secret: &secretFile{user: user, policy: s.cfg.Policy}}
	s.users.Add(1)
	return f, nil
}

// SecretTruncate is ftruncate(2) of a secretmem file: the size can be set
// once; a size change once it is non-zero is EINVAL, as is a negative
// size. Faults at pages from the size on are SIGBUS.
//
// Kernel: mm/secretmem.c:secretmem_setattr(), fs/libfs.c:simple_setattr().
//
// Differences: a closed file, which the kernel would refuse with EBADF,
// is refused with an error wrapping zone.ErrInvalid.
func (m *Model) SecretTruncate(f *File, size int64) error {
	s := f.secret
	if s == nil {
		return fmt.Errorf("secretmem: %s is not a secretmem file: %w", f.name, zone.ErrInvalid)
	}
	if size < 0 {
		return fmt.Errorf("ftruncate: size %d: %w", size, EINVAL)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case s.closed:
		return fmt.Errorf("ftruncate: the secretmem file is closed (EBADF): %w", zone.ErrInvalid)
	case s.size != 0:
		return fmt.Errorf("ftruncate: the secretmem size is already %d: %w", s.size, EINVAL)
	}
	s.size = size
	return nil
}

// SecretSize returns a secretmem file's i_size in bytes.
//
// Kernel: include/linux/fs.h:i_size_read().
func (m *Model) SecretSize(f *File) int64 {
	if f.secret == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return f.secret.size
}

// SecretClose closes a secretmem file's fd. The file is released when it
// is closed and no mapping of it remains: then every page of its page
// cache is mapped again in the direct map, zeroed and freed (or, from a
// pool, given back to it), the pages still charged are uncharged from the
// owner's locked_vm, and secretmem_users drops. A second close is refused
// with an error wrapping zone.ErrInvalid (the kernel's EBADF).
//
// Kernel: mm/secretmem.c:secretmem_release(), secretmem_free_folio(),
// secretmem_unaccount_all_folios(), fs/file_table.c:__fput().
func (m *Model) SecretClose(t *memalloc.Task, f *File) error {
	s := f.secret
	if s == nil {
		return fmt.Errorf("secretmem: %s is not a secretmem file: %w", f.name, zone.ErrInvalid)
	}
	m.mu.Lock()
	if s.closed {
		m.mu.Unlock()
		return fmt.Errorf("close: the secretmem file is already closed (EBADF): %w", zone.ErrInvalid)
	}
	s.closed = true
	m.mu.Unlock()
	return m.secretMaybeRelease(t, f)
}

// secretMaybeRelease releases f if its fd is closed and no mapping
// remains: the last fput. Called by close and by the unmap of a mapping.
//
// Kernel: mm/secretmem.c:secretmem_release(), secretmem_destroy_inode_priv(),
// mm/truncate.c:truncate_inode_pages_final() (secretmem_free_folio).
func (m *Model) secretMaybeRelease(t *memalloc.Task, file *File) error {
	s := file.secret
	st := &m.secret.stats
	m.mu.Lock()
	if s.released || !s.closed || file.maps > 0 {
		m.mu.Unlock()
		return nil
	}
	s.released = true
	var own []zone.Page
	for _, idx := range slices.Sorted(maps.Keys(file.pages)) { // in file order: deterministic
		f := file.pages[idx]
		delete(file.pages, idx)
		f.node.ModState(zone.NodeNrFilePages, -f.NrPages())
		f.node.del(f)
		f.file = nil
		f.Flags &^= PGDirty
		f.val = 0 // secretmem_free_folio: folio_zero_segment
		pfn := f.page.PFN()
		switch {
		case s.policy == SecretBootPool:
			m.secret.boot.put(pfn)
		case s.pool.contains(pfn):
			s.pool.put(pfn)
			st.pmdPoolFree.Add(1)
		default:
			own = append(own, f.page)
		}
		st.inUse.Add(-1)
	}
	st.reserved.Add(-int64(len(s.reserved)))
	own = append(own, s.reserved...)
	s.reserved = nil
	blocks := s.pool.blocks
	st.pmdPoolPages.Add(-s.pool.pages)
	st.pmdPoolFree.Add(-int64(len(s.pool.free)))
	s.pool = secretPool{}
	s.lens = nil
	m.mu.Unlock()

	m.secret.users.Add(-1)
	s.unaccount(s.accounted.Load(), st) // secretmem_unaccount_all_folios
	var errs []error
	for _, pg := range own {
		if err := m.freeSecretPage(t, pg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.freeSecretBlocks(t, blocks); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// secretSrc is where a fault's page came from, to give it back there.
type secretSrc int

const (
	srcOwn      secretSrc = iota // an order-0 page of its own (upstream)
	srcPMD                       // the file's pmd pool
	srcBoot                      // the boot pool
	srcReserved                  // the file's reservation (already charged)
)

// secretFault is the fault handler of a secretmem mapping: the page of
// the page cache at idx, or a new one from the policy's source, charged,
// off the direct map. A page beyond i_size, a charge over the faulting
// task's RLIMIT_MEMLOCK and an empty boot pool are VM_FAULT_SIGBUS; an
// allocation failure is VM_FAULT_OOM. Called with the mmap lock held for
// reading, the Model's lock not held.
//
// Kernel: mm/secretmem.c:secretmem_fault().
// The mask is GFP_HIGHUSER | __GFP_ZERO and the __GFP_COMP folio_alloc
// adds.
func (m *Model) secretFault(p *Proc, vma *VMA, idx int64) (*Folio, FaultResult, error) {
	file := vma.file
	s := file.secret
	st := &m.secret.stats
	m.mu.Lock()
	if idx < 0 || idx >= (s.size+pageSize-1)>>pageShift {
		m.mu.Unlock()
		st.sigbusSize.Add(1)
		return nil, VMFaultSIGBUS, nil // vmf_error(-EINVAL)
	}
	if f, ok := file.pages[idx]; ok {
		m.mu.Unlock()
		return f, 0, nil
	}
	m.mu.Unlock()

	pg, src, ret, err := m.secretGetPage(p, file)
	if ret != 0 {
		return nil, ret, err
	}
	if src != srcReserved && !s.account(p, 1, st) {
		st.sigbusRlimit.Add(1)
		return nil, VMFaultSIGBUS, m.secretPutBack(p.Task, s, pg, src)
	}
	if src == srcOwn {
		if err := m.alloc.DirectMap().SetInvalid(pg.PFN()); err != nil {
			s.unaccount(1, st)
			st.sigbusDirectMap.Add(1)
			_ = m.alloc.FreePages(p.Task, pg, 0)
			return nil, VMFaultSIGBUS, fmt.Errorf("secretmem_fault: %w", err)
		}
		st.dmInvalid.Add(1)
		st.dmInvalidations.Add(1)
	}

	m.mu.Lock()
	if f, ok := file.pages[idx]; ok { // filemap_add_folio: -EEXIST, retry
		if src != srcOwn {
			m.secretPutBackLocked(s, pg, src)
			m.mu.Unlock()
			if src != srcReserved {
				s.unaccount(1, st)
			}
			return f, 0, nil
		}
		m.mu.Unlock()
		s.unaccount(1, st)
		return f, 0, m.freeSecretPage(p.Task, pg)
	}
	f := m.newFolio(pg, 0, nil) // not charged: see the package doc
	f.file, f.index = file, idx
	f.Flags |= PGUnevictable // mapping_set_unevictable
	file.pages[idx] = f
	f.node.ModState(zone.NodeNrFilePages, 1)
	f.node.add(f)
	m.mu.Unlock()
	st.inUse.Add(1)
	st.faults.Add(1)
	// flush_tlb_kernel_range: no TLBs are modelled.
	return f, 0, nil
}

// secretGetPage gets a page for a fault of file from its policy's source:
// zeroed, and off the direct map unless it is srcOwn. A non-zero
// FaultResult is the fault's failure.
func (m *Model) secretGetPage(p *Proc, file *File) (zone.Page, secretSrc, FaultResult, error) {
	s := file.secret
	st := &m.secret.stats
	switch s.policy {
	case SecretBootPool:
		m.mu.Lock()
		pfn, ok := m.secret.boot.take()
		m.mu.Unlock()
		if !ok {
			st.sigbusPool.Add(1)
			return zone.Page{}, 0, VMFaultSIGBUS, nil
		}
		return zone.PageOf(pfn), srcBoot, 0, nil
	case SecretReserveAtMmap:
		m.mu.Lock()
		if n := len(s.reserved); n > 0 {
			pg := s.reserved[n-1]
			s.reserved = s.reserved[:n-1]
			m.mu.Unlock()
			st.reserved.Add(-1)
			return pg, srcReserved, 0, nil
		}
		m.mu.Unlock()
		st.reserveMisses.Add(1)
	case SecretPMDPool:
		m.mu.Lock()
		pfn, ok := s.pool.take()
		m.mu.Unlock()
		if ok {
			st.pmdPoolFree.Add(-1)
			return zone.PageOf(pfn), srcPMD, 0, nil
		}
		if pg, err := m.alloc.AllocPages(p.Task, gfpSecretPMDBlock, secretPMDOrder); err == nil {
			b := secretBlock{pg, secretPMDOrder}
			if err := m.secretInvalidateBlock(b); err != nil {
				_ = m.alloc.FreePages(p.Task, pg, secretPMDOrder)
				st.sigbusDirectMap.Add(1)
				return zone.Page{}, 0, VMFaultSIGBUS, fmt.Errorf("secretmem_fault: %w", err)
			}
			m.mu.Lock()
			s.pool.addBlock(b)
			pfn, _ := s.pool.take()
			m.mu.Unlock()
			st.pmdBlocks.Add(1)
			st.pmdPoolPages.Add(1 << secretPMDOrder)
			st.pmdPoolFree.Add(1<<secretPMDOrder - 1)
			return zone.PageOf(pfn), srcPMD, 0, nil
		}
		st.pmdFallbacks.Add(1)
	}
	pg, err := m.alloc.AllocPages(p.Task, file.gfp|gfp.Zero|gfp.Comp, 0)
	if err != nil {
		st.oom.Add(1)
		return zone.Page{}, 0, VMFaultOOM, fmt.Errorf("secretmem_fault: %w", err)
	}
	return pg, srcOwn, 0, nil
}

// secretPutBack gives a page a fault will not use back to its source.
func (m *Model) secretPutBack(t *memalloc.Task, s *secretFile, pg zone.Page, src secretSrc) error {
	if src == srcOwn { // not yet off the direct map
		return m.alloc.FreePages(t, pg, 0)
	}
	m.mu.Lock()
	m.secretPutBackLocked(s, pg, src)
	m.mu.Unlock()
	return nil
}

// secretPutBackLocked gives a pool or reserved page back. Called with the
// Model's lock held.
func (m *Model) secretPutBackLocked(s *secretFile, pg zone.Page, src secretSrc) {
	st := &m.secret.stats
	switch src {
	case srcBoot:
		m.secret.boot.put(pg.PFN())
	case srcPMD:
		s.pool.put(pg.PFN())
		st.pmdPoolFree.Add(1)
	case srcReserved:
		s.reserved = append(s.reserved, pg)
		st.reserved.Add(1)
	}
}

// secretMmap is secretmem's part of mmap, after the shared-only check:
// nothing, except under SecretReserveAtMmap, where the pages the mapping
// may fault are reserved now: enough that the file's pages (cached,
// reserved, or being reserved) cover length. The charge comes first (over
// RLIMIT_MEMLOCK: EAGAIN), then the order-0 allocations (a failure frees
// what was reserved: ENOMEM). Mapping a closed file is refused with an
// error wrapping zone.ErrInvalid (the kernel's EBADF). Called with p's mmap
// lock held for writing, the Model's lock not held.
//
// Kernel: mm/secretmem.c:secretmem_mmap_prepare(); the reservation is the
// counter-proposal's, with mm/mmap.c:mlock_future_ok()'s EAGAIN.
func (m *Model) secretMmap(p *Proc, file *File, length int64) error {
	s := file.secret
	st := &m.secret.stats
	m.mu.Lock()
	if s.closed {
		m.mu.Unlock()
		st.mmapBad.Add(1)
		return fmt.Errorf("mmap: the secretmem file is closed (EBADF): %w", zone.ErrInvalid)
	}
	if s.policy != SecretReserveAtMmap {
		m.mu.Unlock()
		return nil
	}
	s.lens = append(s.lens, length)
	want := length>>pageShift - (int64(len(file.pages)) + int64(len(s.reserved)) + s.reserving)
	if want <= 0 {
		m.mu.Unlock()
		return nil
	}
	s.reserving += want
	m.mu.Unlock()

	fail := func() {
		m.mu.Lock()
		s.reserving -= want
		s.removeLen(length)
		m.mu.Unlock()
	}
	if !s.account(p, want, st) {
		fail()
		st.mmapEAGAIN.Add(1)
		return fmt.Errorf("mmap: secretmem reservation of %d pages over RLIMIT_MEMLOCK %d: %w",
			want, p.RlimitMemlock(), EAGAIN)
	}
	pages := make([]zone.Page, 0, want)
	for int64(len(pages)) < want {
		pg, err := m.alloc.AllocPages(p.Task, file.gfp|gfp.Zero|gfp.Comp, 0)
		if err == nil {
			if err = m.alloc.DirectMap().SetInvalid(pg.PFN()); err != nil {
				_ = m.alloc.FreePages(p.Task, pg, 0)
			}
		}
		if err != nil {
			for _, pg := range pages {
				_ = m.freeSecretPage(p.Task, pg)
			}
			s.unaccount(want, st)
			fail()
			st.mmapENOMEM.Add(1)
			return fmt.Errorf("mmap: secretmem reservation of %d pages: %w: %w", want, ENOMEM, err)
		}
		st.dmInvalid.Add(1)
		st.dmInvalidations.Add(1)
		pages = append(pages, pg)
	}
	m.mu.Lock()
	s.reserving -= want
	s.reserved = append(s.reserved, pages...)
	m.mu.Unlock()
	st.reserved.Add(want)
	return nil
}

// removeLen drops one mapping length. Called with the Model's lock held.
func (s *secretFile) removeLen(length int64) {
	for i, l := range s.lens {
		if l == length {
			s.lens = append(s.lens[:i], s.lens[i+1:]...)
			return
		}
	}
}

// secretMunmap undoes secretMmap for a mapping that failed after it: the
// length no longer needs backing, and reserved pages beyond what the
// remaining mappings' lengths need are uncharged and freed. The frees run
// as a task of secretmem's own (the mapping's caller passes none).
//
// Kernel: mm/vma.c:__mmap_region() (the unmap on the error path); the
// reservation is the counter-proposal's.
func (m *Model) secretMunmap(file *File, length int64) {
	s := file.secret
	if s.policy != SecretReserveAtMmap {
		return
	}
	st := &m.secret.stats
	m.mu.Lock()
	s.removeLen(length)
	var cover int64
	for _, l := range s.lens {
		cover = max(cover, l>>pageShift)
	}
	excess := int64(len(file.pages)) + int64(len(s.reserved)) + s.reserving - cover
	n := min(max(excess, 0), int64(len(s.reserved)))
	drop := append([]zone.Page(nil), s.reserved[int64(len(s.reserved))-n:]...)
	s.reserved = s.reserved[:int64(len(s.reserved))-n]
	m.mu.Unlock()
	if n == 0 {
		return
	}
	st.reserved.Add(-n)
	s.unaccount(n, st)
	t := memalloc.NewTaskWith("secretmem", memalloc.WithOwner(m.alloc.Owner()))
	for _, pg := range drop {
		_ = m.freeSecretPage(t, pg) // a failure is a BUG the allocator reported
	}
}

// SecretStats are secretmem's counters: what the policies are compared
// on. Gauges are now; the others count from boot.
//
// Kernel: mm/secretmem.c (secretmem_users), mm/vmstat.c
// (direct_map_level2_splits, direct_map_level3_splits); the rest is
// mmsim's.
type SecretStats struct {
	Policy SecretPolicy
	// Users is secretmem_users: secretmem files not yet released.
	Users int64
	// PagesInUse is the pages in secretmem files' page caches.
	PagesInUse int64
	// Accounted is the pages secretmem charges to users' locked_vm now
	// (the files' nr_pages_accounted summed).
	Accounted int64
	// Reserved is the pages reserve-at-mmap reserved and no fault took.
	Reserved int64
	// PoolPages and PoolFree are the pool's pages and those not handed
	// out: the boot pool (boot-pool), or the files' 2 MiB blocks summed
	// (pmd-pool).
	PoolPages, PoolFree int64
	// PMDBlocks is the 2 MiB blocks pmd-pool allocated; PMDFallbacks the
	// faults that found none and took an order-0 page.
	PMDBlocks, PMDFallbacks int64
	// ReserveMisses is the reserve-at-mmap faults that found no reserved
	// page (a mapping at a page offset beyond the reserved count) and
	// took an order-0 page as upstream.
	ReserveMisses int64
	// Faults is the faults that added a page to a secretmem file.
	Faults int64
	// SIGBUSFaults is the faults that returned VM_FAULT_SIGBUS: the sum
	// of SIGBUSRlimit (over RLIMIT_MEMLOCK), SIGBUSPoolEmpty (the boot
	// pool was empty), SIGBUSBeyondSize (at or past i_size) and
	// SIGBUSDirectMap (the direct map refused).
	SIGBUSFaults                                                     int64
	SIGBUSRlimit, SIGBUSPoolEmpty, SIGBUSBeyondSize, SIGBUSDirectMap int64
	// OOMFaults is the faults that returned VM_FAULT_OOM.
	OOMFaults int64
	// MmapFailures counts secretmem's mmap failures by errno: EAGAIN and
	// ENOMEM of reserve-at-mmap; a closed file's under EBADF's number, 9.
	MmapFailures map[Errno]int64
	// DirectMapInvalid is the pages secretmem holds off the direct map
	// now; DirectMapInvalidations the set_direct_map_invalid_noflush
	// calls it made.
	DirectMapInvalid, DirectMapInvalidations int64
	// DirectMapLevel2Splits and DirectMapLevel3Splits are the machine's
	// direct_map_level2_splits and direct_map_level3_splits (2 MiB and
	// 1 GiB entries split; secretmem is their only source in mmsim).
	DirectMapLevel2Splits, DirectMapLevel3Splits int64
}

// ebadf is EBADF's number, for MmapFailures.
const ebadf Errno = 9

// SecretStats returns secretmem's counters.
//
// Kernel: mm/secretmem.c (secretmem_users), mm/vmstat.c
// (direct_map_level2_splits, direct_map_level3_splits); the rest is
// mmsim's.
func (m *Model) SecretStats() SecretStats {
	s := &m.secret
	st := &s.stats
	s.cfgMu.RLock()
	policy := s.cfg.Policy
	s.cfgMu.RUnlock()
	out := SecretStats{
		Policy:                 policy,
		Users:                  s.users.Load(),
		PagesInUse:             st.inUse.Load(),
		Accounted:              st.accounted.Load(),
		Reserved:               st.reserved.Load(),
		PMDBlocks:              st.pmdBlocks.Load(),
		PMDFallbacks:           st.pmdFallbacks.Load(),
		ReserveMisses:          st.reserveMisses.Load(),
		Faults:                 st.faults.Load(),
		SIGBUSRlimit:           st.sigbusRlimit.Load(),
		SIGBUSPoolEmpty:        st.sigbusPool.Load(),
		SIGBUSBeyondSize:       st.sigbusSize.Load(),
		SIGBUSDirectMap:        st.sigbusDirectMap.Load(),
		OOMFaults:              st.oom.Load(),
		MmapFailures:           map[Errno]int64{},
		DirectMapInvalid:       st.dmInvalid.Load(),
		DirectMapInvalidations: st.dmInvalidations.Load(),
		DirectMapLevel2Splits:  m.alloc.Event(zone.VMDirectMapLevel2Splits),
		DirectMapLevel3Splits:  m.alloc.Event(zone.VMDirectMapLevel3Splits),
	}
	out.SIGBUSFaults = out.SIGBUSRlimit + out.SIGBUSPoolEmpty + out.SIGBUSBeyondSize + out.SIGBUSDirectMap
	for e, c := range map[Errno]*atomic.Int64{EAGAIN: &st.mmapEAGAIN, ENOMEM: &st.mmapENOMEM, ebadf: &st.mmapBad} {
		if n := c.Load(); n > 0 {
			out.MmapFailures[e] = n
		}
	}
	if policy == SecretBootPool {
		m.mu.Lock()
		out.PoolPages, out.PoolFree = s.boot.pages, int64(len(s.boot.free))
		m.mu.Unlock()
	} else {
		out.PoolPages, out.PoolFree = st.pmdPoolPages.Load(), st.pmdPoolFree.Load()
	}
	return out
}
