"""Debugging aid (not a test): dumps a faust worker's state every HB_DUMP_EVERY seconds to HB_DUMP.<pid>.

Used to trace the start-up race herstelbus.faustpatch guards against. Per partition: the aiokafka
position and highwater, whether faust has it active/paused/buffered, its read/committed/acked
offsets and gaps; then every asyncio task with its await chain. Run a worker (or a test that starts
one) with:

    PYTHONPATH=tests/tools/faust_dump HB_DUMP=/tmp/dump/out HB_DUMP_EVERY=8 .venv/bin/pytest ...

Reads faust-streaming 0.15.3 / aiokafka 0.14 internals; never imported by herstelbus itself.
"""
import os, threading, time, io, gc, asyncio
if os.environ.get("HB_DUMP"):
    out = os.environ["HB_DUMP"]
    loops = []
    orig = asyncio.BaseEventLoop.run_forever
    def run_forever(self):
        loops.append(self)
        return orig(self)
    asyncio.BaseEventLoop.run_forever = run_forever
    def state(buf):
        import faust
        for o in gc.get_objects():
            if isinstance(o, faust.App):
                c = o.consumer
                a = c._thread._consumer._subscription.subscription.assignment
                buf.write(f"app {o.conf.id} flow_active={c.flow_active} fc_active={o.flow_control.is_active()} in_recovery={o.in_recovery} gen={o.consumer_generation_id}\n")
                for tp in sorted(a.tps):
                    if tp.topic.startswith("herstelbus-router"): continue
                    st = a.state_value(tp)
                    ftp = [t for t in c._active_partitions or [] if t.topic == tp.topic and t.partition == tp.partition]
                    key = ftp[0] if ftp else tp
                    buf.write(f"  {tp.topic}/{tp.partition} pos={st._position} hw={st.highwater} aiopaused={st.paused} "
                              f"active={bool(ftp)} paused={any(t.topic==tp.topic and t.partition==tp.partition for t in c._paused_partitions)} "
                              f"buffered={any(t.topic==tp.topic and t.partition==tp.partition for t in c._buffered_partitions)} "
                              f"read={ {str(k):v for k,v in c._read_offset.items() if k.topic==tp.topic and k.partition==tp.partition} } "
                              f"committed={ [v for k,v in c._committed_offset.items() if k.topic==tp.topic and k.partition==tp.partition] } "
                              f"acked={ [sorted(v)[:3] for k,v in c._acked.items() if k.topic==tp.topic and k.partition==tp.partition] } "
                              f"gap={ [str(v) for k,v in c._gap.items() if k.topic==tp.topic and k.partition==tp.partition][:1] }\n")
                fe = c._thread._consumer._fetcher
                buf.write(f" aiokafka buffered: { {f'{k.topic}/{k.partition}':type(v).__name__ for k,v in fe._records.items()} }\n")
                for ch in list(o.topics._topics) if hasattr(o.topics,'_topics') else []:
                    try: buf.write(f" channel {ch} qsize={ch.queue.qsize()} pending_drop={len(ch.queue._pending_pressure_drop_callbacks)}\n")
                    except Exception as e: buf.write(f" channel err {e!r}\n")
    def dump(loop):
        buf = io.StringIO()
        buf.write(f"==== {time.strftime('%X')} pid {os.getpid()}\n")
        try: state(buf)
        except Exception as e: buf.write(f"state err {e!r}\n")
        for t in asyncio.all_tasks(loop):
            c = t.get_coro(); frames = []
            depth = 0
            while c is not None and depth < 30:
                f = getattr(c, 'cr_frame', None) or getattr(c, 'gi_frame', None) or getattr(c, 'ag_frame', None)
                if f is not None: frames.append(f"{f.f_code.co_filename.split('site-packages/')[-1]}:{f.f_lineno} {f.f_code.co_name}")
                c = getattr(c, 'cr_await', None) or getattr(c, 'gi_yieldfrom', None) or getattr(c, 'ag_await', None); depth += 1
            buf.write(f"--- {t.get_name()[:80]}\n    " + "\n    ".join(frames) + (f"\n    awaiting {c!r}"[:200] if c is not None else "") + "\n")
        with open(f"{out}.{os.getpid()}", "a") as f: f.write(buf.getvalue())
    def ticker():
        while True:
            time.sleep(float(os.environ.get("HB_DUMP_EVERY", "15")))
            for l in loops:
                if l.is_running(): l.call_soon_threadsafe(dump, l)
    threading.Thread(target=ticker, daemon=True).start()
