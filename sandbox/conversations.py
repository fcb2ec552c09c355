"""Plausible two-party call-center conversations for the AI API and RingCX transcripts.

Each script is about thirty utterances between an agent (speaker "0") and a customer
(speaker "1"), with an emotion tag per line and the key phrases, topics and summaries a
real analysis would find in it. Names and products are picked with a seeded random, so
the same seed (an AI job id, a RingCX segment id) always gives the same conversation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

AGENT = 0
CUSTOMER = 1

AGENT_NAMES = ("Rachel", "Marcus", "Priya", "Daniel", "Sofia", "Owen")
CUSTOMER_NAMES = ("Meredith Blake", "Tom Alvarez", "Grace Chen", "Victor Okafor", "Lena Novak")
COMPANIES = ("Northwind Electronics", "Contoso Home", "Blue Harbor Telecom")


@dataclass(frozen=True)
class Line:
    speaker: int
    emotion: str
    text: str


@dataclass(frozen=True)
class Script:
    subject: str
    products: tuple[str, ...]
    key_phrases: tuple[str, ...]
    topics: tuple[str, ...]
    short_summary: str
    long_summary: str
    lines: tuple[Line, ...]
    tasks: tuple[str, ...] = ()
    """Action items the conversation agreed on (the AI API's `Tasks`)."""


def _lines(*items: tuple[int, str, str]) -> tuple[Line, ...]:
    return tuple(Line(speaker, emotion, text) for speaker, emotion, text in items)


_SCRIPTS = (
    Script(
        subject="router connectivity",
        products=("AX3000 router", "mesh router", "fiber gateway"),
        key_phrases=("router", "firmware", "internet", "reset", "technician"),
        topics=("router connectivity", "firmware update"),
        short_summary="{agent} helps {customer} restore the internet connection of a {product}.",
        long_summary=(
            "{customer} calls {company} because the {product} lost its internet connection "
            "after a firmware update. {agent} checks the account, walks the customer through "
            "a reset and a manual firmware reinstall, and books a technician visit in case "
            "the connection drops again."
        ),
        lines=_lines(
            (AGENT, "Neutral", "Thank you for calling {company}, this is {agent}."),
            (AGENT, "Neutral", "How can I help you today?"),
            (CUSTOMER, "Negative", "Hi {agent}, my internet has been down since this morning."),
            (CUSTOMER, "Negative", "The {product} keeps blinking orange and nothing connects."),
            (AGENT, "Neutral", "I am sorry to hear that. May I have your name, please?"),
            (CUSTOMER, "Neutral", "Sure, it is {customer}."),
            (AGENT, "Neutral", "Thank you. Did anything change before the outage started?"),
            (CUSTOMER, "Neutral", "The router installed a firmware update overnight, I think."),
            (AGENT, "Neutral", "That helps. I can see the update on our side as well."),
            (AGENT, "Neutral", "Could you unplug the router for thirty seconds for me?"),
            (CUSTOMER, "Neutral", "Okay, it is unplugged now."),
            (AGENT, "Neutral", "Great, now plug it back in and wait for the front light."),
            (CUSTOMER, "Negative", "It is still orange. Is that bad?"),
            (AGENT, "Neutral", "It means the firmware did not finish installing."),
            (AGENT, "Neutral", "We can reinstall it manually with a reset."),
            (CUSTOMER, "Neutral", "How long will that take?"),
            (AGENT, "Neutral", "About five minutes. Press the reset button for ten seconds."),
            (CUSTOMER, "Neutral", "Done. The lights are all flashing now."),
            (AGENT, "Positive", "Perfect, that is the reinstall running."),
            (CUSTOMER, "Neutral", "Should I do anything else in the meantime?"),
            (AGENT, "Neutral", "No, just leave it powered on until the light turns green."),
            (CUSTOMER, "Positive", "It is green now and my laptop is back online."),
            (AGENT, "Positive", "Wonderful. Can you open a web page to confirm?"),
            (CUSTOMER, "Positive", "Yes, everything loads. Thank you so much."),
            (AGENT, "Neutral", "I will also book a technician visit in case it happens again."),
            (CUSTOMER, "Neutral", "Will the technician visit cost anything?"),
            (AGENT, "Positive", "No, it is covered by your service plan."),
            (CUSTOMER, "Positive", "That is great news."),
            (AGENT, "Neutral", "Is there anything else I can help you with today?"),
            (CUSTOMER, "Positive", "No, that is all. Have a nice day, {agent}."),
        ),
        tasks=(
            "{agent} books a technician visit for {customer}.",
            "{customer} keeps the {product} powered on until the light turns green.",
        ),
    ),
    Script(
        subject="plan upgrade and billing",
        products=("Business Plus plan", "Premium support plan", "Unlimited calling plan"),
        key_phrases=("invoice", "upgrade", "discount", "billing", "contract"),
        topics=("billing question", "plan upgrade"),
        short_summary="{agent} explains a billing charge to {customer} and upgrades the plan.",
        long_summary=(
            "{customer} asks {company} about an unexpected charge on the latest invoice. "
            "{agent} explains that the charge is a prorated upgrade fee, applies a one-time "
            "discount, and moves the account to the {product} with a new annual contract."
        ),
        lines=_lines(
            (AGENT, "Neutral", "Good afternoon, {company} billing, {agent} speaking."),
            (CUSTOMER, "Neutral", "Hello, this is {customer}. I have a question about my invoice."),
            (AGENT, "Neutral", "Of course. What would you like to know?"),
            (CUSTOMER, "Negative", "There is a charge I do not recognise, almost forty dollars."),
            (AGENT, "Neutral", "Let me pull up the account. One moment, please."),
            (AGENT, "Neutral", "I see it. That is a prorated fee for the upgrade last month."),
            (CUSTOMER, "Negative", "But nobody told me the upgrade would cost extra."),
            (AGENT, "Neutral", "I understand. The upgrade added two more user licenses."),
            (CUSTOMER, "Neutral", "Right, we hired two people. Is the fee charged every month?"),
            (AGENT, "Neutral", "No, the prorated part appears only once."),
            (AGENT, "Positive", "I can also apply a one-time discount for the confusion."),
            (CUSTOMER, "Positive", "That would be appreciated."),
            (AGENT, "Neutral", "Done. You will see the credit on the next invoice."),
            (CUSTOMER, "Neutral", "Thanks. While I have you, what does the {product} include?"),
            (AGENT, "Neutral", "It includes priority support and call analytics."),
            (AGENT, "Neutral", "Would you like me to send you the comparison sheet?"),
            (CUSTOMER, "Neutral", "Yes please. How much more would it be per user?"),
            (AGENT, "Neutral", "Five dollars per user per month on an annual contract."),
            (CUSTOMER, "Neutral", "And on a monthly contract?"),
            (AGENT, "Neutral", "Eight dollars, so the annual contract is the better deal."),
            (CUSTOMER, "Positive", "Let us go with the annual contract then."),
            (AGENT, "Positive", "Great choice. I am moving the account to the {product} now."),
            (CUSTOMER, "Neutral", "Will the change apply today?"),
            (AGENT, "Neutral", "Yes, it is effective immediately."),
            (AGENT, "Neutral", "You will get a confirmation email with the new billing terms."),
            (CUSTOMER, "Positive", "Perfect. I appreciate your help, {agent}."),
            (AGENT, "Neutral", "Is there anything else I can do for you?"),
            (CUSTOMER, "Neutral", "No, that covers everything."),
            (AGENT, "Positive", "Thank you for choosing {company}. Goodbye."),
            (CUSTOMER, "Positive", "Bye, thanks again."),
        ),
        tasks=(
            "{agent} sends {customer} the comparison sheet.",
            "{agent} moves the account to the {product} on an annual contract.",
        ),
    ),
)


@dataclass(frozen=True)
class Utterance:
    speaker: int
    emotion: str
    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Conversation:
    agent: str
    customer: str
    company: str
    product: str
    script: Script
    utterances: tuple[Utterance, ...]

    def fill(self, template: str) -> str:
        return template.format(
            agent=self.agent, customer=self.customer, company=self.company, product=self.product
        )


def conversation(seed: str, *, start_offset: float | None = None) -> Conversation:
    """A timed conversation: about 2.6 words per second with short pauses between turns."""
    rng = random.Random(seed)
    script = rng.choice(_SCRIPTS)
    agent = rng.choice(AGENT_NAMES)
    customer = rng.choice(CUSTOMER_NAMES)
    company = rng.choice(COMPANIES)
    product = rng.choice(script.products)
    names = {"agent": agent, "customer": customer, "company": company, "product": product}
    cursor = round(rng.uniform(1.5, 4.0), 2) if start_offset is None else start_offset
    utterances = []
    for line in script.lines:
        text = line.text.format(**names)
        spoken = len(text.split()) / rng.uniform(2.2, 3.1)
        start = round(cursor, 2)
        end = round(start + max(0.6, spoken), 2)
        confidence = round(rng.uniform(0.8, 0.95), 2)
        utterances.append(Utterance(line.speaker, line.emotion, text, start, end, confidence))
        cursor = end + rng.uniform(0.1, 0.9)
    return Conversation(agent, customer, company, product, script, tuple(utterances))
