package zone

// The vmstat items of /proc/vmstat, /proc/zoneinfo and /proc/meminfo, in the
// order and with the names of Linux 7.2 on x86_64 (CONFIG_NUMA, SWAP,
// ZSWAP, ZSMALLOC, KSM, TRANSPARENT_HUGEPAGE, HUGETLB_PAGE, COMPACTION,
// MIGRATION, NUMA_BALANCING, BALLOON; no HIGHMEM, no CMA). This file is
// generated from the kernel's vmstat_text[] as that configuration selects it.
//
// Kernel: include/linux/mmzone.h (enum zone_stat_item, numa_stat_item,
// node_stat_item), include/linux/vm_event_item.h, mm/vmstat.c:vmstat_text[].

// ZoneStat is a zone counter.
//
// Kernel: include/linux/mmzone.h:enum zone_stat_item.
type ZoneStat int

// The a zone counter items.
const (
	ZoneNrFreePages        ZoneStat = iota // nr_free_pages
	ZoneNrFreePagesBlocks                  // nr_free_pages_blocks
	ZoneNrZoneInactiveAnon                 // nr_zone_inactive_anon
	ZoneNrZoneActiveAnon                   // nr_zone_active_anon
	ZoneNrZoneInactiveFile                 // nr_zone_inactive_file
	ZoneNrZoneActiveFile                   // nr_zone_active_file
	ZoneNrZoneUnevictable                  // nr_zone_unevictable
	ZoneNrZoneWritePending                 // nr_zone_write_pending
	ZoneNrMlock                            // nr_mlock
	ZoneNrZspages                          // nr_zspages
	ZoneNrFreeCMA                          // nr_free_cma
	nrZoneStats
)

var zoneStatNames = [...]string{
	"nr_free_pages",
	"nr_free_pages_blocks",
	"nr_zone_inactive_anon",
	"nr_zone_active_anon",
	"nr_zone_inactive_file",
	"nr_zone_active_file",
	"nr_zone_unevictable",
	"nr_zone_write_pending",
	"nr_mlock",
	"nr_zspages",
	"nr_free_cma",
}

// String returns the item's /proc name.
func (i ZoneStat) String() string { return zoneStatNames[i] }

// NumaStat is a NUMA event counter of a zone.
//
// Kernel: include/linux/mmzone.h:enum numa_stat_item.
type NumaStat int

// The a NUMA event counter of a zone items.
const (
	NumaHit        NumaStat = iota // numa_hit
	NumaMiss                       // numa_miss
	NumaForeign                    // numa_foreign
	NumaInterleave                 // numa_interleave
	NumaLocal                      // numa_local
	NumaOther                      // numa_other
	nrNumaStats
)

var numaStatNames = [...]string{
	"numa_hit",
	"numa_miss",
	"numa_foreign",
	"numa_interleave",
	"numa_local",
	"numa_other",
}

// String returns the item's /proc name.
func (i NumaStat) String() string { return numaStatNames[i] }

// NodeStat is a node counter.
//
// Kernel: include/linux/mmzone.h:enum node_stat_item.
type NodeStat int

// The a node counter items.
const (
	NodeNrInactiveAnon             NodeStat = iota // nr_inactive_anon
	NodeNrActiveAnon                               // nr_active_anon
	NodeNrInactiveFile                             // nr_inactive_file
	NodeNrActiveFile                               // nr_active_file
	NodeNrUnevictable                              // nr_unevictable
	NodeNrSlabReclaimable                          // nr_slab_reclaimable
	NodeNrSlabUnreclaimable                        // nr_slab_unreclaimable
	NodeNrIsolatedAnon                             // nr_isolated_anon
	NodeNrIsolatedFile                             // nr_isolated_file
	NodeWorkingsetNodes                            // workingset_nodes
	NodeWorkingsetRefaultAnon                      // workingset_refault_anon
	NodeWorkingsetRefaultFile                      // workingset_refault_file
	NodeWorkingsetActivateAnon                     // workingset_activate_anon
	NodeWorkingsetActivateFile                     // workingset_activate_file
	NodeWorkingsetRestoreAnon                      // workingset_restore_anon
	NodeWorkingsetRestoreFile                      // workingset_restore_file
	NodeWorkingsetNodereclaim                      // workingset_nodereclaim
	NodeNrAnonPages                                // nr_anon_pages
	NodeNrMapped                                   // nr_mapped
	NodeNrFilePages                                // nr_file_pages
	NodeNrDirty                                    // nr_dirty
	NodeNrWriteback                                // nr_writeback
	NodeNrShmem                                    // nr_shmem
	NodeNrShmemHugepages                           // nr_shmem_hugepages
	NodeNrShmemPmdmapped                           // nr_shmem_pmdmapped
	NodeNrFileHugepages                            // nr_file_hugepages
	NodeNrFilePmdmapped                            // nr_file_pmdmapped
	NodeNrAnonTransparentHugepages                 // nr_anon_transparent_hugepages
	NodeNrVmscanWrite                              // nr_vmscan_write
	NodeNrVmscanImmediateReclaim                   // nr_vmscan_immediate_reclaim
	NodeNrDirtied                                  // nr_dirtied
	NodeNrWritten                                  // nr_written
	NodeNrThrottledWritten                         // nr_throttled_written
	NodeNrKernelMiscReclaimable                    // nr_kernel_misc_reclaimable
	NodeNrFollPinAcquired                          // nr_foll_pin_acquired
	NodeNrFollPinReleased                          // nr_foll_pin_released
	NodeNrVmalloc                                  // nr_vmalloc
	NodeNrKernelStack                              // nr_kernel_stack
	NodeNrPageTablePages                           // nr_page_table_pages
	NodeNrSecPageTablePages                        // nr_sec_page_table_pages
	NodeNrIOMMUPages                               // nr_iommu_pages
	NodeNrSwapcached                               // nr_swapcached
	NodePgpromoteSuccess                           // pgpromote_success
	NodePgpromoteCandidate                         // pgpromote_candidate
	NodePgpromoteCandidateNRL                      // pgpromote_candidate_nrl
	NodePgdemoteKswapd                             // pgdemote_kswapd
	NodePgdemoteDirect                             // pgdemote_direct
	NodePgdemoteKhugepaged                         // pgdemote_khugepaged
	NodePgdemoteProactive                          // pgdemote_proactive
	NodePgstealKswapd                              // pgsteal_kswapd
	NodePgstealDirect                              // pgsteal_direct
	NodePgstealKhugepaged                          // pgsteal_khugepaged
	NodePgstealProactive                           // pgsteal_proactive
	NodePgstealAnon                                // pgsteal_anon
	NodePgstealFile                                // pgsteal_file
	NodePgscanKswapd                               // pgscan_kswapd
	NodePgscanDirect                               // pgscan_direct
	NodePgscanKhugepaged                           // pgscan_khugepaged
	NodePgscanProactive                            // pgscan_proactive
	NodePgscanAnon                                 // pgscan_anon
	NodePgscanFile                                 // pgscan_file
	NodePgrefill                                   // pgrefill
	NodeNrHugetlb                                  // nr_hugetlb
	NodeNrBalloonPages                             // nr_balloon_pages
	NodeNrKernelFilePages                          // nr_kernel_file_pages
	NodeNrGPUActive                                // nr_gpu_active
	NodeNrGPUReclaim                               // nr_gpu_reclaim
	nrNodeStats
)

// NrNodeStats is the number of node counters, for layers that keep a copy
// of each (a memory cgroup's).
const NrNodeStats = int(nrNodeStats)

var nodeStatNames = [...]string{
	"nr_inactive_anon",
	"nr_active_anon",
	"nr_inactive_file",
	"nr_active_file",
	"nr_unevictable",
	"nr_slab_reclaimable",
	"nr_slab_unreclaimable",
	"nr_isolated_anon",
	"nr_isolated_file",
	"workingset_nodes",
	"workingset_refault_anon",
	"workingset_refault_file",
	"workingset_activate_anon",
	"workingset_activate_file",
	"workingset_restore_anon",
	"workingset_restore_file",
	"workingset_nodereclaim",
	"nr_anon_pages",
	"nr_mapped",
	"nr_file_pages",
	"nr_dirty",
	"nr_writeback",
	"nr_shmem",
	"nr_shmem_hugepages",
	"nr_shmem_pmdmapped",
	"nr_file_hugepages",
	"nr_file_pmdmapped",
	"nr_anon_transparent_hugepages",
	"nr_vmscan_write",
	"nr_vmscan_immediate_reclaim",
	"nr_dirtied",
	"nr_written",
	"nr_throttled_written",
	"nr_kernel_misc_reclaimable",
	"nr_foll_pin_acquired",
	"nr_foll_pin_released",
	"nr_vmalloc",
	"nr_kernel_stack",
	"nr_page_table_pages",
	"nr_sec_page_table_pages",
	"nr_iommu_pages",
	"nr_swapcached",
	"pgpromote_success",
	"pgpromote_candidate",
	"pgpromote_candidate_nrl",
	"pgdemote_kswapd",
	"pgdemote_direct",
	"pgdemote_khugepaged",
	"pgdemote_proactive",
	"pgsteal_kswapd",
	"pgsteal_direct",
	"pgsteal_khugepaged",
	"pgsteal_proactive",
	"pgsteal_anon",
	"pgsteal_file",
	"pgscan_kswapd",
	"pgscan_direct",
	"pgscan_khugepaged",
	"pgscan_proactive",
	"pgscan_anon",
	"pgscan_file",
	"pgrefill",
	"nr_hugetlb",
	"nr_balloon_pages",
	"nr_kernel_file_pages",
	"nr_gpu_active",
	"nr_gpu_reclaim",
}

// String returns the item's /proc name.
func (i NodeStat) String() string { return nodeStatNames[i] }

// VMEvent is a global vm event counter.
//
// Kernel: include/linux/vm_event_item.h:enum vm_event_item.
type VMEvent int

// The a global vm event counter items.
const (
	VMPgpgin                      VMEvent = iota // pgpgin
	VMPgpgout                                    // pgpgout
	EvPswpin                                     // pswpin
	EvPswpout                                    // pswpout
	VMPgallocDMA                                 // pgalloc_dma
	VMPgallocDMA32                               // pgalloc_dma32
	VMPgallocNormal                              // pgalloc_normal
	VMPgallocMovable                             // pgalloc_movable
	VMPgallocDevice                              // pgalloc_device
	VMAllocstallDMA                              // allocstall_dma
	VMAllocstallDMA32                            // allocstall_dma32
	VMAllocstallNormal                           // allocstall_normal
	VMAllocstallMovable                          // allocstall_movable
	VMAllocstallDevice                           // allocstall_device
	VMPgskipDMA                                  // pgskip_dma
	VMPgskipDMA32                                // pgskip_dma32
	VMPgskipNormal                               // pgskip_normal
	VMPgskipMovable                              // pgskip_movable
	VMPgskipDevice                               // pgskip_device
	VMPgfree                                     // pgfree
	VMPgactivate                                 // pgactivate
	VMPgdeactivate                               // pgdeactivate
	VMPglazyfree                                 // pglazyfree
	VMPgfault                                    // pgfault
	VMPgmajfault                                 // pgmajfault
	VMPglazyfreed                                // pglazyfreed
	VMPgreuse                                    // pgreuse
	VMPgscanDirectThrottle                       // pgscan_direct_throttle
	VMZoneReclaimSuccess                         // zone_reclaim_success
	VMZoneReclaimFailed                          // zone_reclaim_failed
	VMPginodesteal                               // pginodesteal
	VMSlabsScanned                               // slabs_scanned
	VMKswapdInodesteal                           // kswapd_inodesteal
	VMKswapdLowWmarkHitQuickly                   // kswapd_low_wmark_hit_quickly
	VMKswapdHighWmarkHitQuickly                  // kswapd_high_wmark_hit_quickly
	EvPageoutrun                                 // pageoutrun
	VMPgrotated                                  // pgrotated
	VMDropPagecache                              // drop_pagecache
	VMDropSlab                                   // drop_slab
	VMOOMKill                                    // oom_kill
	VMNumaPTEUpdates                             // numa_pte_updates
	VMNumaHugePTEUpdates                         // numa_huge_pte_updates
	VMNumaHintFaults                             // numa_hint_faults
	VMNumaHintFaultsLocal                        // numa_hint_faults_local
	VMNumaPagesMigrated                          // numa_pages_migrated
	VMPgmigrateSuccess                           // pgmigrate_success
	VMPgmigrateFail                              // pgmigrate_fail
	VMTHPMigrationSuccess                        // thp_migration_success
	VMTHPMigrationFail                           // thp_migration_fail
	VMTHPMigrationSplit                          // thp_migration_split
	VMCompactMigrateScanned                      // compact_migrate_scanned
	VMCompactFreeScanned                         // compact_free_scanned
	VMCompactIsolated                            // compact_isolated
	VMCompactStall                               // compact_stall
	VMCompactFail                                // compact_fail
	VMCompactSuccess                             // compact_success
	VMCompactDaemonWake                          // compact_daemon_wake
	VMCompactDaemonMigrateScanned                // compact_daemon_migrate_scanned
	VMCompactDaemonFreeScanned                   // compact_daemon_free_scanned
	VMHtlbBuddyAllocSuccess                      // htlb_buddy_alloc_success
	VMHtlbBuddyAllocFail                         // htlb_buddy_alloc_fail
	VMUnevictablePgsCulled                       // unevictable_pgs_culled
	VMUnevictablePgsScanned                      // unevictable_pgs_scanned
	VMUnevictablePgsRescued                      // unevictable_pgs_rescued
	VMUnevictablePgsMlocked                      // unevictable_pgs_mlocked
	VMUnevictablePgsMunlocked                    // unevictable_pgs_munlocked
	VMUnevictablePgsCleared                      // unevictable_pgs_cleared
	VMUnevictablePgsStranded                     // unevictable_pgs_stranded
	VMTHPFaultAlloc                              // thp_fault_alloc
	VMTHPFaultFallback                           // thp_fault_fallback
	VMTHPFaultFallbackCharge                     // thp_fault_fallback_charge
	VMTHPCollapseAlloc                           // thp_collapse_alloc
	VMTHPCollapseAllocFailed                     // thp_collapse_alloc_failed
	VMTHPFileAlloc                               // thp_file_alloc
	VMTHPFileFallback                            // thp_file_fallback
	VMTHPFileFallbackCharge                      // thp_file_fallback_charge
	VMTHPFileMapped                              // thp_file_mapped
	VMTHPSplitPage                               // thp_split_page
	VMTHPSplitPageFailed                         // thp_split_page_failed
	VMTHPDeferredSplitPage                       // thp_deferred_split_page
	VMTHPUnderusedSplitPage                      // thp_underused_split_page
	VMTHPSplitPMD                                // thp_split_pmd
	VMTHPScanExceedNonePTE                       // thp_scan_exceed_none_pte
	VMTHPScanExceedSwapPTE                       // thp_scan_exceed_swap_pte
	VMTHPScanExceedSharePTE                      // thp_scan_exceed_share_pte
	VMTHPSplitPUD                                // thp_split_pud
	VMTHPZeroPageAlloc                           // thp_zero_page_alloc
	VMTHPZeroPageAllocFailed                     // thp_zero_page_alloc_failed
	VMTHPSwpout                                  // thp_swpout
	VMTHPSwpoutFallback                          // thp_swpout_fallback
	VMBalloonInflate                             // balloon_inflate
	VMBalloonDeflate                             // balloon_deflate
	VMBalloonMigrate                             // balloon_migrate
	VMSwapRA                                     // swap_ra
	VMSwapRAHit                                  // swap_ra_hit
	VMSwpinZero                                  // swpin_zero
	VMSwpoutZero                                 // swpout_zero
	VMKSMSwpinCopy                               // ksm_swpin_copy
	VMCowKSM                                     // cow_ksm
	VMZswpin                                     // zswpin
	VMZswpout                                    // zswpout
	VMZswpwb                                     // zswpwb
	VMDirectMapLevel2Splits                      // direct_map_level2_splits
	VMDirectMapLevel3Splits                      // direct_map_level3_splits
	VMDirectMapLevel2Collapses                   // direct_map_level2_collapses
	VMDirectMapLevel3Collapses                   // direct_map_level3_collapses
	nrVMEvents
)

var vMEventNames = [...]string{
	"pgpgin",
	"pgpgout",
	"pswpin",
	"pswpout",
	"pgalloc_dma",
	"pgalloc_dma32",
	"pgalloc_normal",
	"pgalloc_movable",
	"pgalloc_device",
	"allocstall_dma",
	"allocstall_dma32",
	"allocstall_normal",
	"allocstall_movable",
	"allocstall_device",
	"pgskip_dma",
	"pgskip_dma32",
	"pgskip_normal",
	"pgskip_movable",
	"pgskip_device",
	"pgfree",
	"pgactivate",
	"pgdeactivate",
	"pglazyfree",
	"pgfault",
	"pgmajfault",
	"pglazyfreed",
	"pgreuse",
	"pgscan_direct_throttle",
	"zone_reclaim_success",
	"zone_reclaim_failed",
	"pginodesteal",
	"slabs_scanned",
	"kswapd_inodesteal",
	"kswapd_low_wmark_hit_quickly",
	"kswapd_high_wmark_hit_quickly",
	"pageoutrun",
	"pgrotated",
	"drop_pagecache",
	"drop_slab",
	"oom_kill",
	"numa_pte_updates",
	"numa_huge_pte_updates",
	"numa_hint_faults",
	"numa_hint_faults_local",
	"numa_pages_migrated",
	"pgmigrate_success",
	"pgmigrate_fail",
	"thp_migration_success",
	"thp_migration_fail",
	"thp_migration_split",
	"compact_migrate_scanned",
	"compact_free_scanned",
	"compact_isolated",
	"compact_stall",
	"compact_fail",
	"compact_success",
	"compact_daemon_wake",
	"compact_daemon_migrate_scanned",
	"compact_daemon_free_scanned",
	"htlb_buddy_alloc_success",
	"htlb_buddy_alloc_fail",
	"unevictable_pgs_culled",
	"unevictable_pgs_scanned",
	"unevictable_pgs_rescued",
	"unevictable_pgs_mlocked",
	"unevictable_pgs_munlocked",
	"unevictable_pgs_cleared",
	"unevictable_pgs_stranded",
	"thp_fault_alloc",
	"thp_fault_fallback",
	"thp_fault_fallback_charge",
	"thp_collapse_alloc",
	"thp_collapse_alloc_failed",
	"thp_file_alloc",
	"thp_file_fallback",
	"thp_file_fallback_charge",
	"thp_file_mapped",
	"thp_split_page",
	"thp_split_page_failed",
	"thp_deferred_split_page",
	"thp_underused_split_page",
	"thp_split_pmd",
	"thp_scan_exceed_none_pte",
	"thp_scan_exceed_swap_pte",
	"thp_scan_exceed_share_pte",
	"thp_split_pud",
	"thp_zero_page_alloc",
	"thp_zero_page_alloc_failed",
	"thp_swpout",
	"thp_swpout_fallback",
	"balloon_inflate",
	"balloon_deflate",
	"balloon_migrate",
	"swap_ra",
	"swap_ra_hit",
	"swpin_zero",
	"swpout_zero",
	"ksm_swpin_copy",
	"cow_ksm",
	"zswpin",
	"zswpout",
	"zswpwb",
	"direct_map_level2_splits",
	"direct_map_level3_splits",
	"direct_map_level2_collapses",
	"direct_map_level3_collapses",
}

// String returns the item's /proc name.
func (i VMEvent) String() string { return vMEventNames[i] }

// vmStatNames are the writeback and memmap lines between the node stats
// and the events. Kernel: include/linux/vmstat.h:enum vm_stat_item.
var vmStatNames = [...]string{"nr_dirty_threshold", "nr_dirty_background_threshold", "nr_memmap_pages", "nr_memmap_boot_pages"}
