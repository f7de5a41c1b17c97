"""Hypothesis strategies shared by the codec tests: every MQTT packet, in 3.1.1 and 5.0 form."""

from __future__ import annotations

from hypothesis import strategies as st

from simd.transports.mqtt import codec as c

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
topic_name = text.filter(lambda s: "+" not in s and "#" not in s)
pid = st.integers(1, 0xFFFF)
blob = st.binary(max_size=40)

_values = {
    c.BYTE: st.integers(0, 255),
    c.U16: st.integers(0, 0xFFFF),
    c.U32: st.integers(0, 0xFFFFFFFF),
    c.VARINT: st.integers(0, c.MAX_REMAINING),
    c.STR: text,
    c.BIN: blob,
    c.PAIR: st.tuples(text, text),
}


@st.composite
def properties(draw: st.DrawFn) -> c.Properties:
    ids = draw(st.lists(st.sampled_from(sorted(c.PROPERTIES)), max_size=5))
    out = []
    seen = set()
    for i in ids:
        if i in seen and i not in c.REPEATABLE:
            continue
        seen.add(i)
        name, kind = c.PROPERTIES[i]
        out.append((name, draw(_values[kind])))
    return tuple(out)


def packets(version: int) -> st.SearchStrategy[c.Packet]:
    """Packets as a connection speaking `version` sends or receives them."""
    v5 = version == c.V5
    props = properties() if v5 else st.just(())
    code = st.integers(0, 255) if v5 else st.just(0)

    @st.composite
    def publish(draw: st.DrawFn) -> c.Publish:
        qos = draw(st.integers(0, 2))
        return c.Publish(
            draw(topic_name),
            draw(blob),
            qos,
            draw(st.booleans()),
            draw(st.booleans()) if qos else False,
            draw(pid) if qos else None,
            draw(props),
        )

    @st.composite
    def ack(draw: st.DrawFn, cls: type) -> c.Packet:
        reason = draw(code)
        return cls(draw(pid), reason, draw(props))

    @st.composite
    def connect(draw: st.DrawFn) -> c.Connect:
        user = draw(st.none() | text)
        password = draw(st.none() | blob) if (user is not None or v5) else None
        will = draw(
            st.none() | st.builds(c.Will, topic_name, blob, st.integers(0, 2), st.booleans(), props)
        )
        return c.Connect(
            draw(text),
            version,
            draw(st.booleans()),
            draw(st.integers(0, 0xFFFF)),
            user,
            password,
            will,
            draw(props),
        )

    strategies = [
        publish(),
        connect(),
        st.builds(c.ConnAck, st.booleans(), st.integers(0, 255), props),
        ack(c.PubAck),
        ack(c.PubRec),
        ack(c.PubRel),
        ack(c.PubComp),
        st.builds(
            c.Subscribe,
            pid,
            st.lists(st.tuples(text, st.integers(0, 2)), min_size=1, max_size=3).map(tuple),
            props,
        ),
        st.builds(c.SubAck, pid, st.lists(st.integers(0, 255), max_size=4).map(tuple), props),
        st.builds(c.Unsubscribe, pid, st.lists(text, min_size=1, max_size=3).map(tuple), props),
        st.builds(
            c.UnsubAck,
            pid,
            st.lists(st.integers(0, 255), max_size=3).map(tuple) if v5 else st.just(()),
            props,
        ),
        st.just(c.PingReq()),
        st.just(c.PingResp()),
        st.builds(c.Disconnect, code, props),
    ]
    if v5:
        strategies.append(st.builds(c.Auth, code, props))
    return st.one_of(strategies)
