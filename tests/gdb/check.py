# check.py: run by tests/gdb/run.sh inside gdb, against tests/gdb/parked.c.
#
# Stops the program where every goroutine is in place, runs the commands
# of tools/gdb/gort-gdb.py as a user would, prints what they print and
# checks that text: each goroutine's status, M, start function and place,
# each parked goroutine's backtrace down to the function that parked it,
# and that the threads' registers and gdb's selection are the same after
# every command as before. Then lets the program finish: it exits 0 only
# if every goroutine it released got what it should, which a context put
# back wrong would spoil. The last line is "gort-gdb check: ok" or
# "gort-gdb check: FAILED".

import re

import gdb

failed = []


def check(ok, what):
    if not ok:
        failed.append(what)
        print('FAIL: ' + what)


def run(cmd):
    print('(gdb) ' + cmd)
    out = gdb.execute(cmd, to_string=True)
    print(out, end='')
    return out


# Start function: (status, on an M, where it is, the gort call it is in).
EXPECT = {
    'main_goroutine': ('running', True, 'gort_test_ready at parked.c', None),
    'parked_in_chan_recv': ('waiting (chan receive)', False, None, 'gort_chan_recv'),
    'parked_in_chan_send': ('waiting (chan send)', False, None, 'gort_chan_send'),
    'parked_in_select': ('waiting (select)', False, None, 'gort_select'),
    'parked_in_mutex_lock': ('waiting (sync.Mutex.Lock)', False, None, 'gort_mutex_lock'),
    'parked_in_wg_wait': ('waiting (sync.WaitGroup.Wait)', False, None, 'gort_wg_wait'),
    'parked_in_sleep': ('waiting (sleep)', False, None, 'gort_sleep'),
    'running_spin': ('running', True, 'running_spin at parked.c', None),
    'in_syscall_read': ('syscall', True, 'read', None),
    'never_ran': ('runnable', False, '(not started)', None),
}


def goroutine_table(out):
    """info goroutines' rows, by start function, cut at the header's columns."""
    lines = out.splitlines()
    head = lines[0]
    cols = [m.start() for m in re.finditer(r'\S+', head)]   # Id Status M Start Where
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(cols, cols[1:] + [len(line)])]
        rows[cells[3]] = {'mark': line[0], 'id': int(cells[0]), 'status': cells[1],
                          'm': cells[2], 'where': cells[4]}
    return rows


def frames(bt):
    """The function names of a backtrace, innermost first."""
    return re.findall(r'^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(', bt, re.M)


# The registers a goroutine command may put in a thread, and the flags.
REGS = {
    'x86-64': 'rip rsp rbp rbx r12 r13 r14 r15 eflags',
    'aarch64': 'pc sp x29 x30 x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 cpsr '
               'v8 v9 v10 v11 v12 v13 v14 v15',
}


def target_arch():
    name = gdb.selected_inferior().architecture().name()
    return 'aarch64' if name.startswith('aarch64') else 'x86-64'


# qemu-user's gdb stub stops only the thread that reported the stop: the
# others run on (sysmon wakes every few ms), so their registers change by
# themselves. tests/gdb/run-qemu.sh sets $gort_check_qemu_user, and then
# only the threads that goroutine commands write to are compared: the one
# stopped at the breakpoint and the one blocked in read().
QEMU_USER_THREADS = ('gort_test_ready', 'in_syscall_read')


def compared():
    """Whether the selected thread's registers are compared."""
    if gdb.convenience_variable('gort_check_qemu_user') is None:
        return True
    f = gdb.newest_frame()
    for _ in range(8):
        if f is None:
            return False
        if f.name() in QEMU_USER_THREADS:
            return True
        f = f.older()
    return False


def state():
    """What no goroutine command may change: every thread's registers and
    newest frame, the selected thread and frame."""
    thread, frame = gdb.selected_thread(), gdb.selected_frame()
    regs = REGS[target_arch()]
    s = []
    try:
        for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
            t.switch()
            if compared():
                s.append('thread %d\n' % t.num +
                         gdb.execute('info registers ' + regs, to_string=True))
    finally:
        thread.switch()
        frame.select()
    return s + [gdb.execute('frame', to_string=True)]


def same_state(before, cmd):
    after = state()
    check(after == before, '%s: the registers or the selected frame changed' % cmd)
    if after != before:
        for b, a in zip(before, after):
            for lb, la in zip(b.splitlines(), a.splitlines()):
                if lb != la:
                    print('  was: %s\n  now: %s' % (lb, la))


def main():
    gdb.execute('set pagination off')
    gdb.execute('set confirm off')
    gdb.execute('break gort_test_ready')
    # Under qemu-user, tests/gdb/run-qemu.sh has gdb attached to the
    # emulator's stub, at the program's first instruction.
    gdb.execute('continue' if gdb.selected_inferior().pid != 0 else 'run')
    check(gdb.selected_frame().name() == 'gort_test_ready', 'not stopped in gort_test_ready')
    gdb.execute('up')   # main_goroutine's frame: it must stay selected

    before = state()
    table = goroutine_table(run('info goroutines'))
    same_state(before, 'info goroutines')
    check(sorted(table) == sorted(EXPECT),
          'goroutines started with %s, want %s' % (sorted(table), sorted(EXPECT)))
    for fn, (status, onm, where, _) in EXPECT.items():
        row = table.get(fn)
        if row is None:
            continue
        check(row['status'] == status, '%s: status %r, want %r' % (fn, row['status'], status))
        check(bool(re.fullmatch(r'M\d+', row['m'])) == onm, '%s: M %r' % (fn, row['m']))
        check(row['where'] != '' and (where is None or where in row['where']),
              '%s: where %r, want %r' % (fn, row['where'], where))
        check((row['mark'] == '*') == (fn == 'main_goroutine'), '%s: mark %r' % (fn, row['mark']))

    # A parked goroutine's backtrace, from its saved context: the gort call
    # it parked in, the function that called it, then gostart.
    for fn, (_, _, _, call) in EXPECT.items():
        if fn not in table:
            continue
        cmd = 'goroutine %d bt' % table[fn]['id']
        names = frames(run(cmd))
        same_state(before, cmd)
        if call is not None:
            check(call in names and fn in names and names.index(call) < names.index(fn),
                  '%s: no %s called from %s in %s' % (cmd, call, fn, names))
        if fn != 'never_ran':
            check(fn in names and names[names.index(fn) + 1:][:1] == ['gostart'],
                  '%s: no %s called from gostart in %s' % (cmd, fn, names))

    # Any command, not only bt: info frame describes the frame bt starts
    # with; frame function selects another one in the goroutine (gdb prints
    # that straight to the terminal, so only the state after it is checked).
    # And a goroutine's registers put in a thread stopped in read(), which
    # must go on reading afterwards.
    recv = table['parked_in_chan_recv']['id']
    top = frames(run('goroutine %d bt' % recv))[0]
    cmd = 'goroutine %d info frame' % recv
    check(' in %s (' % top in run(cmd), '%s: not in %s' % (cmd, top))
    same_state(before, cmd)
    cmd = 'goroutine %d frame function parked_in_chan_recv' % recv
    run(cmd)
    same_state(before, cmd)
    cmd = 'goroutine %d goroutine %d bt' % (table['in_syscall_read']['id'], recv)
    check('parked_in_chan_recv' in frames(run(cmd)), cmd)
    same_state(before, cmd)

    out = run('goroutine all bt')
    same_state(before, 'goroutine all bt')
    check(len(re.findall(r'^goroutine \d+ \[', out, re.M)) == len(EXPECT),
          'goroutine all bt: not %d goroutines' % len(EXPECT))
    for fn in EXPECT:
        check(fn in out, 'goroutine all bt: no %s' % fn)
    check(goroutine_table(run('info goroutines')) == table, 'info goroutines changed')

    gdb.execute('delete')
    gdb.execute('continue')
    code = gdb.parse_and_eval('$_exitcode')
    check(code.type.code != gdb.TYPE_CODE_VOID and int(code) == 0,
          'the program did not exit with status 0 (%s)' % code)


try:
    main()
except gdb.error as e:
    check(False, 'gdb: %s' % e)
print('gort-gdb check: ' + ('ok' if not failed else 'FAILED (%d)' % len(failed)))
