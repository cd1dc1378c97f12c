# gort-gdb.py: gdb support for programs that use gort, as Go's
# runtime-gdb.py is for Go programs.
#
# gdb loads it by itself with a program linked with libgort.so (the install
# puts it where gdb's auto-load looks); with a static one:
#
#   (gdb) source tools/gdb/gort-gdb.py
#
#   info goroutines     one line per goroutine: id, status, M, the function
#                       it started with, where it is now
#   goroutine N bt      backtrace of goroutine N
#   goroutine all bt    of every goroutine
#   goroutine N CMD     any command in goroutine N's context
#                       (goroutine 5 info locals)
#
# What it needs of the runtime (the G and M structs, the G status enum, the
# wait reason strings, allgs and allm) it reads from debug information, so
# it follows their changes. tools/gdb/README.md says more.

import gdb

# Go's words for the G status values (the enum in src/runtime.h).
STATUS_NAMES = {
    'Gidle': 'idle',
    'Grunnable': 'runnable',
    'Grunning': 'running',
    'Gsyscall': 'syscall',
    'Gwaiting': 'waiting',
    'Gdead': 'dead',
}

# The frame gort__ctx_switch (src/arch/amd64.S) leaves at a saved sp: an
# 8-byte MXCSR and x87 control word slot, the callee-saved registers in the
# order it pops them, then the return address.
SAVED_REGS = ['r15', 'r14', 'r13', 'r12', 'rbx', 'rbp']
CTX_RET = 8 * (1 + len(SAVED_REGS))

# What goroutine N CMD sets in the selected thread's newest frame, and then
# puts back.
SWITCHED_REGS = ['rip', 'rsp'] + SAVED_REGS

# The frame gort__ctx_switch (src/arch/arm64.S) leaves at a saved sp, 176
# bytes: a frame record (x29, then x30, the return address, signed if the
# runtime was built with pointer authentication), x19-x28 from byte 16,
# d8-d15 from byte 96, FPCR at byte 160. A new goroutine's first frame has
# the same layout, with gort__gostart_tramp as its return address.
A64_FRAME = 176
A64_GPRS = ['x%d' % i for i in range(19, 29)]
A64_GPRS_AT = 16
A64_FPRS_AT = 96
# d8-d15 are the low halves of v8-v15: only those are set and put back, so
# that the thread keeps its upper halves.
A64_FPRS = ['v%d.d.u[0]' % i for i in range(8, 16)]
A64_SWITCHED_REGS = ['pc', 'sp', 'x29', 'x30'] + A64_GPRS + A64_FPRS


def constant(name):
    """An enumerator of gort's (Gwaiting, waitReasonZero, ...)."""
    sym = gdb.lookup_static_symbol(name)
    if sym is None:
        raise gdb.GdbError('gort: no symbol %s: no gort here, or no debug information' % name)
    return int(sym.value())


def readword(addr):
    return int.from_bytes(bytes(gdb.selected_inferior().read_memory(addr, 8)), 'little')


class Amd64:
    """A saved context on x86-64 (src/arch/amd64.S)."""

    switched = SWITCHED_REGS

    def retaddr(self, sp):
        return readword(sp + CTX_RET)

    def context(self, sp):
        """The registers as they are after the switch back returns."""
        regs = {r: readword(sp + 8 * (1 + i)) for i, r in enumerate(SAVED_REGS)}
        regs['rip'] = readword(sp + CTX_RET)
        regs['rsp'] = sp + CTX_RET + 8
        return regs


class Arm64:
    """A saved context on AArch64 (src/arch/arm64.S)."""

    switched = A64_SWITCHED_REGS

    def __init__(self):
        # The bits of a code address that pointer authentication signs, as
        # gdb knows them from the target (pauth_cmask); without them, the
        # bits above Linux's usual 48-bit user address space.
        mask = gdb.parse_and_eval('$pauth_cmask')
        if mask.type.code == gdb.TYPE_CODE_VOID:
            self.pacmask = ~((1 << 48) - 1) & 0xffffffffffffffff
        else:
            self.pacmask = int(mask)

    def retaddr(self, sp):
        return readword(sp + 8) & ~self.pacmask

    def context(self, sp):
        """The registers as they are after the switch back returns: the
        return address in pc and x30, as its ret leaves them (authenticated,
        so unsigned), sp above the frame."""
        regs = {r: readword(sp + A64_GPRS_AT + 8 * i) for i, r in enumerate(A64_GPRS)}
        regs.update({r: readword(sp + A64_FPRS_AT + 8 * i) for i, r in enumerate(A64_FPRS)})
        regs['x29'] = readword(sp)
        regs['pc'] = regs['x30'] = self.retaddr(sp)
        regs['sp'] = sp + A64_FRAME
        return regs


def saved_context_layout():
    """The saved-context layout of the program's architecture."""
    try:
        name = gdb.selected_inferior().architecture().name()
    except AttributeError:   # gdb before 12
        name = gdb.newest_frame().architecture().name()
    if name.startswith('aarch64'):
        return Arm64()
    if name.startswith('i386:x86-64'):
        return Amd64()
    raise gdb.GdbError('gort: no support for architecture %s' % name)


class Layout:
    """Where each field of a struct lies, from debug information, so that
    a slab of G structs is decoded from one memory read: a million
    goroutines are four thousand reads, not millions of gdb.Values."""

    def __init__(self, t):
        self.size = t.sizeof
        self.fields = {}
        self.add(t.strip_typedefs(), '', 0)

    def add(self, t, prefix, base):
        for f in t.fields():
            ft = f.type.strip_typedefs()
            off = base + f.bitpos // 8
            self.fields[prefix + f.name] = (off, ft.sizeof)
            if ft.code == gdb.TYPE_CODE_STRUCT:
                self.add(ft, prefix + f.name + '.', off)

    def get(self, buf, base, name):
        off, size = self.fields[name]
        return int.from_bytes(buf[base + off:base + off + size], 'little')


class Goroutine:
    def __init__(self, buf, base, lay):
        self.goid = lay.get(buf, base, 'goid')
        self.status = lay.get(buf, base, 'atomicstatus')
        self.waitreason = lay.get(buf, base, 'waitreason')
        self.fn = lay.get(buf, base, 'fn')
        self.m = lay.get(buf, base, 'm')
        self.sp = lay.get(buf, base, 'sched.sp')
        self.stacklo = lay.get(buf, base, 'stack.lo')


def goroutines():
    """Every live G, by goroutine id: those in g.c's allgs (g0s are not)
    that are neither Gidle nor Gdead."""
    allgs = None
    for sym in gdb.lookup_static_symbols('allgs'):
        if sym.symtab is not None and sym.symtab.filename.endswith('g.c'):
            allgs = sym.value()
    if allgs is None:
        raise gdb.GdbError('gort: no allgs: no gort here, or no debug information')
    lay = Layout(gdb.lookup_type('G'))
    skip = (constant('Gidle'), constant('Gdead'))
    gs = []
    slab = allgs['slabs']
    while slab:
        used = int(slab['used'])
        first = int(slab['g'][0].address)
        buf = bytes(gdb.selected_inferior().read_memory(first, used * lay.size))
        for i in range(used):
            g = Goroutine(buf, i * lay.size, lay)
            if g.status not in skip:
                gs.append(g)
        slab = slab['next']
    return sorted(gs, key=lambda g: g.goid)


def waitreason_strings():
    """Go's words for each wait reason: the table static in sched.c's
    gort__waitreason_string, found through the function's block (or an
    inlined copy's). Failing that, the enumerators' names."""
    for fn in ('gort__waitreason_string', 'waitreason_string'):
        try:
            sals = gdb.decode_line(fn)[1] or []
        except gdb.error:
            sals = []
        for sal in sals:
            b = gdb.block_for_pc(sal.pc)
            while b is not None and (b.function is None or b.function.name != fn):
                b = b.superblock
            sym = gdb.lookup_symbol('s', b)[0] if b is not None else None
            if sym is not None:
                v = sym.value()
                lo, hi = v.type.range()
                return [v[i].string() for i in range(lo, hi + 1)]
    t = gdb.lookup_type('waitReason')
    return [f.name[len('waitReason'):] for f in t.fields()]


def funcname(pc):
    """The function containing pc; the outermost one when pc is in code
    inlined into it, as a saved return address is when the switch was not
    a tail call."""
    name = None
    b = gdb.block_for_pc(pc)
    while b is not None:
        if b.function is not None:
            name = b.function.print_name
        b = b.superblock
    if name is None:
        sym = gdb.execute('info symbol %#x' % pc, to_string=True)
        name = sym.split(' in section ')[0] if ' in section ' in sym else '%#x' % pc
    return name


def framewhere(frame):
    name = frame.name() or '%#x' % frame.pc()
    sal = frame.find_sal()
    if sal.symtab is None:
        return name
    return '%s at %s:%d' % (name, sal.symtab.filename.split('/')[-1], sal.line)


class Runtime:
    """The goroutines, and the threads that run some of them, read once
    per command."""

    def __init__(self):
        if gdb.selected_inferior().pid == 0:
            raise gdb.GdbError('gort: the program is not running')
        self.names = {constant(k): v for k, v in STATUS_NAMES.items()}
        self.onthread = (constant('Grunning'), constant('Gsyscall'))
        self.waiting = constant('Gwaiting')
        self.reasonzero = constant('waitReasonZero')
        self.reasons = waitreason_strings()
        self.gs = goroutines()
        self.arch = saved_context_layout()
        # Ms by address, and gdb's threads by kernel thread id (M.procid).
        self.ms = {}
        mp = gdb.lookup_global_symbol('gort__allm').value()
        while mp:
            self.ms[int(mp)] = mp.dereference()
            mp = mp['alllink']
        self.threads = {t.ptid[1]: t for t in gdb.selected_inferior().threads()}

    def find(self, goid):
        for g in self.gs:
            if g.goid == goid:
                return g
        raise gdb.GdbError('gort: no goroutine %d' % goid)

    def status(self, g):
        """Go's words: running, runnable, syscall, waiting (chan receive)."""
        s = self.names.get(g.status, 'status %d' % g.status)
        if g.status == self.waiting and g.waitreason != self.reasonzero:
            r = self.reasons[g.waitreason] if g.waitreason < len(self.reasons) else '?'
            s += ' (%s)' % r
        return s

    def m(self, g):
        """The M running g, if it is on a thread: running or in a system call."""
        return self.ms.get(g.m) if g.status in self.onthread else None

    def thread(self, g):
        m = self.m(g)
        return self.threads.get(int(m['procid'])) if m is not None else None


def setregs(names, values):
    """Assigns registers in the selected thread. Only the newest frame's
    can be assigned, and after each write gdb selects again the frame that
    has the selected one's id, which a half-written context can make
    another (seen on aarch64: pc written back, the frame 1 of that pc and
    the goroutine's sp was taken for it, and sp then could not be
    assigned): so frame 0 is selected before each."""
    for r in names:
        gdb.execute('select-frame 0')
        gdb.parse_and_eval('$%s = %d' % (r, values[r]))


class InfoGoroutines(gdb.Command):
    """List the goroutines: id, status (with the wait reason, in Go's
    words), the M running it, the function it started with, and where it
    is: for a goroutine on a thread, that thread's newest frame; for a
    parked or runnable one, the function it switched away in. * marks the
    goroutine of the selected thread."""

    def __init__(self):
        gdb.Command.__init__(self, 'info goroutines', gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, _from_tty):
        rt = Runtime()
        selected, frame = gdb.selected_thread(), gdb.selected_frame()
        rows = [(' ', 'Id', 'Status', 'M', 'Start', 'Where')]
        try:
            for g in rt.gs:
                m, t = rt.m(g), rt.thread(g)
                if t is not None:
                    t.switch()
                    where = framewhere(gdb.newest_frame())
                elif g.stacklo == 0:
                    where = '(not started)'
                else:
                    where = funcname(rt.arch.retaddr(g.sp))
                rows.append(('*' if t == selected else ' ', str(g.goid), rt.status(g),
                             'M%d' % int(m['id']) if m is not None else '',
                             funcname(g.fn), where))
        finally:
            selected.switch()
            frame.select()
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            print('  '.join(c.ljust(w) for c, w in zip(r, widths)) + '  ' + r[5])


class GoroutineCmd(gdb.Command):
    """Run a command in a goroutine's context: goroutine N CMD, or
    goroutine all CMD.

    For a goroutine on a thread (running, or in a system call) CMD runs
    with that thread selected. For a parked or runnable one, the registers
    its last switch saved on its stack are put in the selected thread's
    newest frame, CMD runs, and the thread's own registers are put back:
    goroutine 5 bt, goroutine 5 info locals."""

    def __init__(self):
        gdb.Command.__init__(self, 'goroutine', gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, _from_tty):
        words = arg.split(None, 1)
        if len(words) != 2:
            raise gdb.GdbError('usage: goroutine N COMMAND, or goroutine all COMMAND')
        rt = Runtime()
        if words[0] == 'all':
            for g in rt.gs:
                print('goroutine %d [%s]:' % (g.goid, rt.status(g)))
                self.invoke_in(rt, g, words[1])
                print()
        else:
            self.invoke_in(rt, rt.find(int(gdb.parse_and_eval(words[0]))), words[1])

    def invoke_in(self, rt, g, cmd):
        t = rt.thread(g)
        if t is not None:
            selected, frame = gdb.selected_thread(), gdb.selected_frame()
            t.switch()
            try:
                gdb.execute(cmd)
            finally:
                selected.switch()
                frame.select()
            return
        if g.stacklo == 0:
            print('goroutine %d has not started: it will run %s' % (g.goid, funcname(g.fn)))
            return
        regs = rt.arch.context(g.sp)
        switched = rt.arch.switched
        frame = gdb.selected_frame()
        gdb.execute('select-frame 0')
        saved = {r: int(gdb.parse_and_eval('$' + r)) for r in switched}
        try:
            setregs(switched, regs)
            gdb.execute(cmd)
        finally:
            setregs(switched, saved)
            frame.select()


InfoGoroutines()
GoroutineCmd()
