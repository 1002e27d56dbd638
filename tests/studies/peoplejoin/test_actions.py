"""Action parsing on what chat models actually write."""

from __future__ import annotations

import pytest

from lmlab.studies.peoplejoin.actions import ActionError, format_action, parse_action


@pytest.mark.parametrize("text, name, args", [
    ('Enterprise.send_message(user_id="lina", content="Hi Lina, do you have the singer table?")',
     "Enterprise.send_message", {"user_id": "lina", "content": "Hi Lina, do you have the singer table?"}),
    # code fence and prose around the call
    ('Sure! I will ask Lina.\n```python\nEnterprise.send_message("lina", "Please share it.")\n```\nThen wait.',
     "Enterprise.send_message", {"user_id": "lina", "content": "Please share it."}),
    # keywords out of order bind by name, not position
    ("Action: Enterprise.send_message(content='What is the capacity?', user_id='hannah')",
     "Enterprise.send_message", {"user_id": "hannah", "content": "What is the capacity?"}),
    # bare name, no qualifier; markdown-escaped underscore
    ("send\\_message(user_id=\"bob\", content=\"hello\")", "Enterprise.send_message",
     {"user_id": "bob", "content": "hello"}),
    # an unescaped quote inside the message (ast fails; the tolerant parser copes)
    ('Enterprise.send_message(user_id="bob", content="Do you have Stark"s Park data?")',
     "Enterprise.send_message", {"user_id": "bob", "content": 'Do you have Stark"s Park data?'}),
    # unterminated call at the end of the output (max_tokens hit)
    ('Enterprise.send_message(user_id="bob", content="How many concerts in 2014',
     "Enterprise.send_message", {"user_id": "bob", "content": "How many concerts in 2014"}),
    ("System.finish()", "System.finish", {}),
    ("finish", None, None),
    ("Thought: let me look.\nAction: EnterpriseSearch.search_relevant_people(query=\"singers\")\nObservation: ...",
     "EnterpriseSearch.search_relevant_people", {"query": "singers"}),
    ("EnterpriseSearch.search_relevant_people()", "EnterpriseSearch.search_relevant_people", {}),
    ('Reflection.thought(text="I should ask Lina")', "Reflection.thought", {"thought": "I should ask Lina"}),
    ("<|im_start|>assistant\nEnterprise.resolve_person(name='Hannah')<|im_end|>",
     "Enterprise.resolve_person", {"name": "Hannah"}),
    ("Enterprise.send_session_completed()", "Enterprise.send_session_completed", {}),
    ("Enterprise.send_message(user_id=lina, content=\"hi\")", "Enterprise.send_message",
     {"user_id": "lina", "content": "hi"}),
])
def test_parse_messy_outputs(text, name, args):
    if name is None:
        with pytest.raises(ActionError):
            parse_action(text)
        return
    a = parse_action(text)
    assert a.name == name and a.args == args


@pytest.mark.parametrize("text, why", [
    ("", "empty"), ("I don't know what to do.", "no action"),
    ('Enterprise.send_message(user_id="bob")', "needs content"),
    ("EnterpriseSearch.search_documents()", "needs query"),
])
def test_invalid_actions_say_why(text, why):
    with pytest.raises(ActionError, match=why):
        parse_action(text)


def test_format_round_trips():
    s = format_action("Enterprise.send_message", user_id="bob", content='say "hi"\nthen go')
    a = parse_action(s)
    assert a.args == {"user_id": "bob", "content": 'say "hi"\nthen go'}
    assert str(a) == s
