;; The flat walk as a hand-written WebAssembly core: the same walk as
;; walkFlat in flat/walk.ts (its JavaScript twin) and the C reference
;; (bench/walk-reference.c), over native i64 addresses. For each task it
;; completes a plain walk or hands it back (-1), and writes the outcome.
;;
;; It reads the arena of flat/arena.ts in place: the kernel block at `k`
;; (K_* offsets), task rows of 48 bytes at `tasks` (T_* offsets), SYM_CODE
;; ranges as i32 offsets from _stext, the page map, the stacks. The build
;; compiles it with wabt (scripts/build-wasm.mjs) to dist/flat/walk-core.wasm;
;; the .wasm is never edited or committed.
(module
  (import "env" "mem" (memory 1 65536 shared))

  ;; Binary search of the SYM_CODE union for $off (bytes from _stext).
  (func $in_sym_code (param $off i64) (param $starts i32) (param $ends i32) (param $n i32) (result i32)
    (local $lo i32) (local $hi i32) (local $mid i32)
    (local.set $hi (local.get $n))
    (block $done
      (loop $search
        (br_if $done (i32.ge_u (local.get $lo) (local.get $hi)))
        (local.set $mid (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)))
        (if (i64.le_u
              (i64.extend_i32_u (i32.load (i32.add (local.get $starts) (i32.shl (local.get $mid) (i32.const 2)))))
              (local.get $off))
          (then (local.set $lo (i32.add (local.get $mid) (i32.const 1))))
          (else (local.set $hi (local.get $mid))))
        (br $search)))
    (if (result i32) (i32.eqz (local.get $lo))
      (then (i32.const 0))
      (else (i64.lt_u (local.get $off)
        (i64.extend_i32_u
          (i32.load (i32.add (local.get $ends) (i32.shl (i32.sub (local.get $lo) (i32.const 1)) (i32.const 2)))))))))

  ;; Walks tasks [first, first + count); returns the entries of completed walks.
  (func (export "walk")
    (param $first i32) (param $count i32) (param $mode i32) (param $size i32)
    (param $tasks i32) (param $k i32) (param $verdicts i32) (param $trace i32)
    (param $starts i32) (param $ends i32) (param $pages i32)
    (result i32)
    (local $t i32) (local $row i32) (local $result i32) (local $frames i32) (local $n i32)
    (local $fp i64) (local $pc i64) (local $low i64) (local $off i64) (local $nfp i64) (local $lr i64)
    (local $npc i64) (local $stack i64) (local $ssize i64) (local $final i64) (local $addr i32)
    (local $kmask i64) (local $rth i64) (local $kr i64) (local $last i32)
    (local $text i64) (local $tsize i64)
    (local.set $kmask (i64.load (local.get $k)))
    (local.set $rth (i64.load offset=8 (local.get $k)))
    (local.set $kr (i64.load offset=16 (local.get $k)))
    (local.set $text (i64.load offset=48 (local.get $k)))
    (local.set $tsize (i64.extend_i32_u (i32.load offset=56 (local.get $k))))
    (local.set $last (i32.sub (local.get $size) (i32.const 1)))
    (local.set $t (local.get $first))
    (block $tasks_done
      (loop $each_task
        (br_if $tasks_done (i32.ge_u (local.get $t) (i32.add (local.get $first) (local.get $count))))
        (local.set $row (i32.add (local.get $tasks) (i32.mul (local.get $t) (i32.const 48))))
        (local.set $result (i32.const -1))
        (local.set $stack (i64.load offset=16 (local.get $row)))
        (local.set $ssize (i64.extend_i32_u (i32.load offset=8 (local.get $row))))
        (local.set $fp (i64.load offset=24 (local.get $row)))
        (local.set $pc (i64.load offset=32 (local.get $row)))
        (local.set $final (i64.load offset=40 (local.get $row)))
        (local.set $low (i64.const 0))
        (local.set $n (i32.const 0))
        (block $walk_done
          (br_if $walk_done (i32.eqz (i32.load (local.get $row))))
          (br_if $walk_done (i32.and (i32.ne (i32.and (local.get $mode) (i32.const 8)) (i32.const 0))
                                     (i32.eqz (i32.load offset=44 (local.get $k)))))
          (br_if $walk_done (i64.eq (local.get $pc) (local.get $rth)))
          (br_if $walk_done (i64.eq (local.get $pc) (local.get $kr)))
          (loop $each_frame
            ;; consume
            (br_if $walk_done (i32.ge_s (local.get $n) (local.get $last)))
            (if (i32.and (i32.ne (i32.and (local.get $mode) (i32.const 4)) (i32.const 0))
                         (i64.eq (local.get $fp) (local.get $final)))
              (then
                (i64.store (i32.add (local.get $trace) (i32.shl (local.get $n) (i32.const 3))) (local.get $pc))
                (local.set $result (i32.add (local.get $n) (i32.const 1)))
                (br $walk_done)))
            (if (i32.and (local.get $mode) (i32.const 8))
              (then
                (local.set $off (i64.sub (local.get $pc) (local.get $text)))
                (br_if $walk_done (i64.ge_u (local.get $off) (local.get $tsize)))
                (if (i32.load8_u (i32.add (local.get $pages) (i32.wrap_i64 (i64.shr_u (local.get $off) (i64.const 12)))))
                  (then
                    (br_if $walk_done (call $in_sym_code (local.get $off) (local.get $starts) (local.get $ends)
                                        (i32.load offset=60 (local.get $k))))))))
            (i64.store (i32.add (local.get $trace) (i32.shl (local.get $n) (i32.const 3))) (local.get $pc))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            ;; next
            (if (i32.and (i32.ne (i32.and (local.get $mode) (i32.const 2)) (i32.const 0))
                         (i64.eq (local.get $fp) (local.get $final)))
              (then (local.set $result (local.get $n)) (br $walk_done)))
            (local.set $off (i64.sub (local.get $fp) (local.get $stack)))
            (br_if $walk_done (i64.ne (i64.and (local.get $fp) (i64.const 7)) (i64.const 0)))
            (br_if $walk_done (i64.lt_u (local.get $fp) (local.get $stack)))
            (br_if $walk_done (i64.lt_u (local.get $off) (local.get $low)))
            (br_if $walk_done (i64.gt_u (i64.add (local.get $off) (i64.const 16)) (local.get $ssize)))
            (local.set $addr (i32.add (i32.load offset=4 (local.get $row)) (i32.wrap_i64 (local.get $off))))
            (local.set $nfp (i64.load (local.get $addr)))
            (local.set $lr (i64.load offset=8 (local.get $addr)))
            (if (i64.eqz (i64.or (local.get $nfp) (local.get $lr)))
              (then
                ;; A meta record: plain only as the task's FINAL one (mode bit 32).
                (if (i32.and
                      (i32.and (i32.ne (i32.and (local.get $mode) (i32.const 32)) (i32.const 0))
                               (i64.eq (local.get $fp) (local.get $final)))
                      (i32.and
                        (i64.le_u (i64.add (local.get $off) (i64.extend_i32_u (i32.load offset=40 (local.get $k))))
                                  (local.get $ssize))
                        (i32.ge_s (i32.load offset=24 (local.get $k)) (i32.const 0))))
                  (then
                    (if (i64.eq (i64.load (i32.add (local.get $addr) (i32.load offset=24 (local.get $k))))
                                (i64.load offset=32 (local.get $k)))
                      (then (local.set $result (local.get $n))))))
                (br $walk_done)))
            (br_if $walk_done (i64.lt_u (local.get $nfp) (i64.const 0xfff0000000000000)))
            (br_if $walk_done (i64.eqz (i64.and (local.get $lr) (i64.const 0x0080000000000000))))
            (local.set $npc (i64.or (local.get $lr) (local.get $kmask)))
            (br_if $walk_done (i64.lt_u (local.get $npc) (i64.const 0xfff0000000000000)))
            (br_if $walk_done (i64.eq (local.get $npc) (local.get $rth)))
            (br_if $walk_done (i64.eq (local.get $npc) (local.get $kr)))
            (local.set $low (i64.add (local.get $off)
              (select (i64.const 16) (i64.const 1) (i32.and (local.get $mode) (i32.const 1)))))
            (local.set $fp (local.get $nfp))
            (local.set $pc (local.get $npc))
            (br $each_frame)))
        (i32.store (i32.add (local.get $verdicts) (i32.shl (local.get $t) (i32.const 2))) (local.get $result))
        (if (i32.gt_s (local.get $result) (i32.const 0))
          (then (local.set $frames (i32.add (local.get $frames) (local.get $result)))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $each_task)))
    (local.get $frames)))
