"""Demo content for `flask --app patrons seed-demo`: articles, a voting round and its topics.

Everything here was written for this demo about a fictional outlet, The Steppe Courier. The
towns, people and figures in the articles are invented; none of the text is taken from a real
article. The lead images are simple SVG illustrations in patrons/static/demo/.

ARTICLES is a list of (days_ago, fields); the fields are those of
`patrons.articles.service.ArticleDraft`.
"""

CREDIT = "Illustration: The Steppe Courier demo"

_FERRY = """\
At ten to seven on a grey Tuesday, a queue has already formed on the concrete slipway at Bilyi
Brid: two nurses on their way to the district hospital, a man with a crate of tomato seedlings,
a bread van with its engine ticking over. When the flat steel deck of the ferry bumps against
the ramp, nobody cheers. They walk on, the way people here did for decades before the crossing
stopped.

The ferry, a cable-guided pontoon that carries up to two vehicles and forty passengers, was out
of service for almost two years after a winter storm snapped its cable and flooded the winch
house. In that time the nearest road bridge meant a 70-kilometre round trip, and for the roughly
1,800 people on the eastern bank a visit to the hospital, the pension office or the Saturday
market became a day's outing.

## Who rebuilt it

The repair was not glamorous. According to the village council's published budget, the largest
single cost was a new steel cable and two concrete anchor blocks, followed by a diesel winch
salvaged from a retired river dredger and rebuilt in a workshop in the district centre. The
council paid for about half. The rest came from a regional recovery fund and from a collection
organised by the parish and a farmers' cooperative, which needed the crossing to move machinery
between fields on both banks.

Vasyl Tkachuk, who has operated the ferry since 2009, showed us the new control panel with the
care of a man showing off a grandchild.

> "People think a ferry is a boat. It is really a timetable. If I am here at seven, the nurse is
> at work by half past and the children from the other bank are in school for the first lesson.
> That is what came back."

## What it changes

For now the ferry runs on a reduced schedule, agreed at a public meeting in the school hall:

- four return crossings on weekdays, the first at 06:50 and the last at 18:10;
- two on Saturdays, and none on Sundays unless the council announces an extra run;
- free passage for pensioners, schoolchildren and medical staff, and a small fare for vehicles.

Shopkeepers on the western bank say their Saturday trade has already picked up. The district
hospital told us it had moved some outpatient appointments to fit the ferry times, rather than
asking patients to make the long detour by road.

## What it still lacks

The crossing is not yet the service it was. The ferry cannot run when the river is high after
heavy rain, or when ice forms near the banks, and there is no covered waiting area on the
eastern side. Council members say a shelter and a small generator for the winch, so that the
ferry can keep running during power cuts, are next on their list. The money for both has not
been found.

There is also the question of who will follow Mr Tkachuk. He is 61. The council has advertised
twice for a second operator and had one applicant, who later took a job in the city.

"I will train anyone who turns up on time," he said, and went back to the winch. It was 07:10,
and the second crossing was due.
"""

_LIBRARY = """\
The public library in Sosnivka occupies two rooms on the ground floor of the old village council
building. On most afternoons this winter both rooms have been full, and not mainly because of
the books.

Since the generator arrived in November, the library has been the one public place in the
village that stays lit, warm and connected when the grid is down. Schoolchildren do their
homework at the long reading tables. Older residents charge phones and torches. A retired
accountant helps neighbours fill in online forms for compensation and pensions on the library's
two computers.

"We used to count visitors by the number of books we lent," said the librarian, Halyna Moroz,
who has worked here for 23 years. "Now I count them by the number of sockets in use."

## How the money was found

The generator, a 6-kilowatt petrol unit with an automatic switch, cost roughly what the library
used to spend on books in three years. It was paid for by a collection that began in a parents'
group chat and ended with a list of 212 donors pinned to the notice board, from a few hryvnias
to a sum that one local farmer asked us not to publish.

The district culture department paid for the electrician and provides a monthly fuel allowance.
During long outages, Ms Moroz says, that allowance lasts about two weeks. The rest of the fuel
is bought with donations, recorded in a school exercise book that anyone may inspect.

## The rules of the room

Running a shared space on limited fuel has needed rules. They are written on a sheet of paper
taped to the door:

- the generator runs only during outages, and only while the library is open;
- phones and power banks charge at the front table, one device per person at a time;
- the two computers are booked in 30-minute slots, with priority for official forms and
  schoolwork;
- children under ten must be collected by an adult before closing time.

The rules have mostly worked, she says, although the charging table sometimes calls for
diplomacy.

## A place, not just a socket

The residents we spoke to described the library less as a charging point than as somewhere to be
with other people during long evenings without light.

> "At home in the dark you listen to every sound. Here there are children arguing about
> fractions and someone making tea. It is easier to wait for the lights here."

That was Nadiia, a pensioner who comes most afternoons with her granddaughter. She has started
borrowing books again, she said, for the first time in a decade.

The library's opening hours have grown from four days a week to six. Ms Moroz now shares the
work with two volunteers, both retired teachers. What worries her most is the spring, when the
district is due to review the fuel allowance; it has not said whether the money will continue.

"A generator without fuel," she said, "is a very expensive table."
"""

_GRAIN = """\
The grain elevator outside Zolota Balka is not much to look at: six corrugated steel silos, a
weighbridge, a dryer and a rail siding that, until last year, had not seen a loaded wagon for a
long time. This autumn it dispatched wheat and sunflower seed in more than 300 wagons.

The elevator belongs to a cooperative of about 40 family farms, most of them between 100 and 600
hectares. For years its members sold grain at the farm gate to traders who arranged the trucks.
When export routes were disrupted and transport prices jumped, that arrangement began to look
less like convenience and more like a trap.

## Why rail

"We were price-takers twice over," said the cooperative's chair, Roman Lysenko, a former
agronomist. "Once on the grain, once on the transport. The trader told us what the truck cost,
and we had no way to check."

Rail is cheaper per tonne over long distances, but it demands things small farms rarely have: a
working siding, a loading system, a contract with the railway, and enough grain in one place to
fill a block of wagons on schedule. The cooperative spent most of last winter putting those
pieces together. The siding was repaired with a loan from a regional development programme, and
members agreed to pool their harvest at the elevator instead of selling separately.

## What changed in the numbers

The cooperative shared its accounts for the season with us. In summary:

- the average cost of moving a tonne to the port fell by about a fifth compared with the year
  before;
- members waited eleven days on average to be paid, against more than a month under the old
  trader contracts;
- three wagon bookings were cancelled at short notice, and each time grain sat at the siding for
  more than a week.

Those cancellations are what Mr Lysenko talks about most. The supply of wagons depends on
decisions made far from Zolota Balka, and a delay at a port or a border crossing reaches the
small sidings first.

## The price of pooling

Pooling the harvest has also changed how members deal with each other. One farm's poor batch can
hold up a whole shipment if it fails a quality check, so every delivery is now tested at the
weighbridge and entered in a shared ledger of who delivered what, and at what grade.

> "Co-operation sounds warm. In practice it is a spreadsheet everyone can see, and a meeting
> every Thursday where people argue about moisture content."

Not everyone has stayed. Two farms left after the first season, preferring the simplicity of the
trader even at a lower price. Four others have asked to join.

Agricultural advisers in the region say that small producers bargaining together over logistics
is one of the quieter changes in farming here, although reliable figures are scarce. The
cooperative's own plans are modest: a second dryer, a covered storage shed, and a standing
agreement with the railway that would make wagon bookings more predictable.

"Next year I would like to be bored," Mr Lysenko said. "A boring harvest is a good harvest."
"""

_MINES = """\
On a Saturday morning in the village hall of Kamianyi Brid, twenty-six people sit on school
chairs facing a projector screen. Most are farmers. A few are tractor drivers hired by the
farms, two are teenagers who came with their fathers, and one is the village's postwoman, who
covers eleven kilometres of country roads a day.

The course they are attending is run by a volunteer group of former rescue workers and teachers,
in cooperation with the regional emergency service. It lasts two days and it is free. The
printed handout calls it "Mine risk awareness", and the first instructor, a former firefighter
named Iryna Sokil, begins by saying what the course is not.

"Nobody here will learn to make anything safe," she tells the room. "If you leave this weekend
thinking you can clear your own field, we have failed."

## What is taught

The course is about recognising danger and reacting to it calmly. The instructors explain which
signs suggest that a field or a roadside may be dangerous, how official warning signs look, and
what to do and never to do. Their rules, repeated until the room can say them back, are short:

- stop as soon as you see anything suspicious, and do not go closer;
- do not touch it, move it or approach it to take a photograph;
- go back the way you came, stepping in your own tracks if you can;
- remember the place, leave, and call the emergency service;
- warn others, and keep children and animals away.

Much of the second day is spent on maps. Participants learn to read the hazard maps published by
the authorities and to ask their employers whether a field has been surveyed before any work
starts.

## Why farmers come

The demand comes from necessity. Several people in the room have been told that their fields
cannot be worked until a survey is done, and the wait is long. Others work land that has been
declared safe but borders areas that have not.

> "You stop looking at the horizon. You look at the ground in front of the wheels. My son laughs
> at me, but I do it in the garden now too."

That was Petro, a tractor driver who asked us not to print his surname. He took the course
because his employer made it a condition of the season's contract and, he said, because he
wanted to.

## What comes next

The volunteers have run the course in fourteen villages this year. What limits them is not
interest but time and transport: most instructors have day jobs, and the group shares one car.

Ms Sokil is careful about how the course is described. Clearance is work for certified
specialists with equipment, training and insurance, she says; awareness is what everyone else
needs while they wait. She asked us to include one sentence in this article, and we agreed: if
you find something, walk away and call the emergency service.
"""

_SCHOOL = """\
Every classroom at School No. 3 in Horodyshche has a laminated card by the door. It shows a
floor plan, a red arrow pointing to the stairs and a number: the minutes it should take that
class to reach the basement shelter. For the fifth-formers on the second floor, the number is
four.

The school, which has about 640 pupils, returned to in-person lessons after its basement was
converted into a shelter that meets the regional requirements: ventilation, two exits, battery
lighting, drinking water and toilets. It holds just under half of the pupils at once. That
single fact shapes the whole timetable.

## Two shifts, shorter lessons

Because the shelter cannot hold everyone, the school works in two shifts. Younger pupils come in
the morning, older ones in the afternoon, with a gap for cleaning in between. Lessons were
trimmed from 45 to 40 minutes to fit an extra lesson into each shift, so that time lost to
alerts can be made up without adding days to the school year.

The deputy head, Olena Bondar, rebuilds the timetable every term in a spreadsheet she describes
as "not pretty, but it has survived three winters". Her rules of thumb:

- subjects that need long concentration, such as mathematics and languages, go early in each
  shift, when the school's own log shows fewer alerts;
- laboratory work and tests are never put in the last lesson, so that an alert does not end them
  without a chance to resume;
- every teacher keeps a "shelter lesson" ready: reading, oral quizzes or revision that works
  without a board.

## Lessons in the basement

When the siren sounds during a long alert, lessons continue underground. The shelter has
benches, two whiteboards and a shelf of board games that a geography teacher, Andrii Kravets,
bought with his own money.

> "The first year, an alert meant the day was over in our heads. Now it means we change rooms.
> The children adapted faster than the adults did."

Parents get a message when classes go down to the shelter and another when they come up. If an
alert runs past the end of a shift, children wait in the shelter until it is over, and parents
collect them from there.

## What it costs

The arrangement has costs that appear in no budget. Teachers on the afternoon shift finish after
dark in winter. Pupils in different shifts hardly meet, which the school psychologist says has
thinned friendships between year groups. Some families have chosen online schooling instead,
which keeps their children at home for most of the day.

The school has applied for funding to extend the shelter into a neighbouring storeroom, which
would let it return to a single shift. The decision is expected in spring. Ms Bondar is
cautiously hopeful.

"One timetable," she said. "That is my dream. A timetable nobody has to rewrite."
"""

_THEATRE = """\
The stage is a rectangle of grey carpet, three metres by four, laid on the concrete floor of a
school shelter. The set is a wooden door frame, a kitchen chair and a battered suitcase. Around
it, on benches and gym mats, sit about ninety people: children in the front rows, grandparents
at the back, and a few latecomers standing by the door because the benches ran out.

This is the Lantern Theatre, a company of eleven actors from the regional centre, on the
fortieth stop of a season it never planned to spend underground.

## Why basements

The company's own hall, a former cinema, has been closed since its roof was damaged last spring.
Rather than wait for repairs, the director, Sofiia Lytvyn, decided to take the repertoire to the
places where people already gather.

"If people are going to spend their evenings in shelters anyway, we can at least be there with
them," she said.

Performing in a shelter also solves a practical problem. An alert does not end the show; if one
sounds, the doors stay open for anyone coming in from outside, and the actors carry on. Touring
underground comes with its own rules, which the company has refined over the season:

- everything, actors included, must fit into one minibus;
- no lighting that needs mains power: two battery floodlights and a string of lamps;
- no performance runs longer than an hour, and there is no interval, so that the room does not
  overheat;
- the hosts decide the audience size, based on how many people the shelter is meant to hold.

## What they play

The repertoire is mostly comedy. Ms Lytvyn says that was a deliberate choice, and not an easy
one for a company known before the war for long, serious dramas. The current programme includes
an adapted nineteenth-century farce about a matchmaker and a new one-act play, written by one of
the actors, about two neighbours who share a generator and disagree about everything else.

That second play draws the biggest laughs, particularly the scene in which the neighbours try to
divide one extension cord by a written agreement.

> "I laughed at the extension cord because we have exactly that fight with the flat upstairs. It
> was the first time this winter I laughed at it instead of shouting."

That was a woman in the back row who gave her name as Liudmyla. Her grandson had already seen
the play twice.

## Who pays

Admission is free. A regional culture grant covers fuel and the minibus, and the actors continue
to be paid by the theatre at a reduced rate. After each show a hat goes round; the money goes
towards the roof.

Hosts are mostly schools and libraries, but the company has also performed in the basement of a
bakery and the cellar of a village museum. It now receives more invitations than it can accept,
and Ms Lytvyn keeps a waiting list in a notebook.

The roof repair is scheduled for the summer. She is not sure the company will stop touring when
the hall reopens.

"We have met audiences who never bought a theatre ticket in their lives," she said. "It would be
strange to leave them in the basement."
"""

_NEWSROOM = """\
We publish every article on this site free of charge, for everyone. That is possible because
readers support us: patrons who give about the price of a cup of coffee a month, and, for
readers who do not, advertising. We take no money from political parties, and we say so at the
bottom of every page.

Patrons get one thing in return that others do not: a vote on topics for future reporting.
Because that vote touches the heart of what a newsroom does, we want to explain exactly how it
works.

## Where the ideas come from

Every few months our editors draw up a shortlist of topics that we think deserve sustained
reporting but that we cannot all pursue at once. The list comes from our reporters in the
regions, from readers' letters and correction suggestions, and from gaps we notice in our own
coverage. Each topic gets a short description of what we would try to find out.

Patrons can then back up to three topics in each round. When the round closes, we publish the
results in full, along with the number of patrons who voted.

## What the vote decides

The vote helps us decide where to put time and money first. A topic that many patrons back is
likely to get a reporter assigned sooner, a longer research period, or travel that our budget
would otherwise not stretch to. It tells us what our most committed readers want to understand
better, and we take that seriously.

## What it never decides

Just as important is what the vote cannot do. Our editorial rules, which every member of staff
signs, include this line:

> No payment, pledge or vote entitles anyone to coverage, to favourable coverage, or to see or
> change a story before it is published.

In practice that means:

- patrons choose topics, never conclusions: we report what we find, including findings that
  disappoint the people who voted for the topic;
- editors still decide what is published, when, and how it is framed;
- a topic can be dropped if reporting shows the premise was wrong, and we will say so publicly;
- no patron, however generous, sees a story before other readers do;
- urgent news is never delayed or displaced because of a vote.

## Why we do it this way

Reader funding works best when readers can see what their money does. A vote on topics is one
honest way to show that, without turning journalism into a service to order. We also believe
that a newsroom which asks its readers what they want to understand will, over time, become
better at explaining the country to them, and to the rest of the world.

If you think we have got the balance wrong, tell us. The contact form is at the bottom of every
page, and the editors read everything that arrives there.
"""

_CORRECTIONS = """\
We make mistakes. Every newsroom does, and a newsroom that says otherwise is either not checking
or not telling. What matters is how quickly we find them, how we fix them, and whether we are
honest with you about it. This is our policy.

## How to tell us

Every article on this site has a way to report an error. Highlight the text you think is wrong
and press Ctrl + Enter, or follow the "suggest a correction" link below the article, and write a
sentence about what you believe is wrong. You can leave an email address if you would like to
hear back, but you do not have to.

Suggestions go straight to the editor on duty, not to the author of the article. We read every
one, usually within a working day.

## What happens next

The editor checks the point raised against our notes, sources and recordings, and, where needed,
with the reporter. Each suggestion ends in one of three ways:

- **resolved**: we agree that something was wrong, and we have corrected it;
- **declined**: we checked and stand by what we published; if you left an email address, we tell
  you why;
- **left open**: we need more time, usually because a source has to be asked again.

Spelling mistakes and broken links are fixed without a note. Anything that changes a fact, a
name, a number, a quotation or the meaning of a sentence is corrected with a note at the end of
the article, saying what was wrong, what is right, and when it was changed.

## What we never do

We do not quietly rewrite published facts. We do not delete articles because they have become
inconvenient, for us or for anyone else. If an article is withdrawn for a serious reason, such
as a risk to someone's safety, we say so in its place.

> A correction is not an embarrassment to hide. It is part of the record, and the record belongs
> to readers as much as to us.

That sentence is from our editorial rules, and we try to live by it even when a correction is
uncomfortable.

## Why it matters more for us

We write in English about Ukraine for readers who often cannot check our reporting against local
sources. Names are transliterated, places are unfamiliar, and a wrong detail can travel a long
way once it is quoted elsewhere. That makes accuracy our responsibility, and it makes your help
valuable.

If you spot something, tell us. A correction is one of the most useful things a reader can send.
"""

ARTICLES = [
    (
        0.2,
        dict(
            slug="bilyi-brid-ferry-returns",
            title="The ferry at Bilyi Brid runs again, and a riverside town gets its mornings back",
            summary=(
                "After two winters without a crossing, a rebuilt cable ferry carries nurses, "
                "pensioners and a bread van across the river. Who paid for it, and what it "
                "still lacks."
            ),
            body_source=_FERRY,
            author_name="Oksana Pylypenko",
            editor_name="Marta Hnatiuk",
            tags=("Regions", "Transport", "Infrastructure"),
            lead_image_url="/static/demo/river-ferry.svg",
            lead_image_alt=(
                "Illustration of a flat cable ferry crossing a wide river between low green "
                "banks under a pale morning sky."
            ),
            lead_image_caption="The cable ferry links the two banks of the river again.",
            lead_image_credit=CREDIT,
        ),
    ),
    (
        1.5,
        dict(
            slug="sosnivka-library-generator",
            title="A generator, forty chairs and the Wi-Fi password: a village library in the "
            "blackouts",
            summary=(
                "When scheduled power cuts began, residents of Sosnivka paid for a generator "
                "for their library. Now it stays open longer than any other building in the "
                "village."
            ),
            body_source=_LIBRARY,
            author_name="Taras Melnyk",
            editor_name="Marta Hnatiuk",
            tags=("Regions", "Energy", "Education", "Volunteers"),
            lead_image_url="/static/demo/village-library.svg",
            lead_image_alt=(
                "Illustration of a small single-storey building at dusk with warm light in "
                "its windows, among dark trees."
            ),
            lead_image_caption="The library is often the only lit building in the village.",
            lead_image_credit=CREDIT,
        ),
    ),
    (
        3,
        dict(
            slug="grain-cooperative-rail",
            title="Silo, siding, border: how a grain cooperative learned to ship its harvest "
            "by rail",
            summary=(
                "Truck queues and opaque transport prices pushed a cooperative of 40 farms to "
                "book its own rail wagons. The switch saved money, and brought new risks."
            ),
            body_source=_GRAIN,
            author_name="Yuliia Savchuk",
            editor_name="Denys Orlenko",
            tags=("Agriculture", "Transport", "Economy"),
            lead_image_url="/static/demo/grain-silos.svg",
            lead_image_alt=(
                "Illustration of grain silos beside a railway siding with a line of wagons, "
                "and golden fields under a blue sky."
            ),
            lead_image_caption="A repaired siding lets the cooperative load wagons at its "
            "own elevator.",
            lead_image_credit=CREDIT,
        ),
    ),
    (
        5,
        dict(
            slug="mine-awareness-course-for-farmers",
            title="Learning to look down: inside a volunteer mine-awareness course for farmers",
            summary=(
                "A weekend course in a village hall teaches residents to recognise danger and "
                "report it. The instructors are clear about what it does not teach."
            ),
            body_source=_MINES,
            author_name="Bohdan Kovalenko",
            editor_name="Denys Orlenko",
            tags=("Regions", "Safety", "Agriculture", "Volunteers"),
            lead_image_url="/static/demo/field-markers.svg",
            lead_image_alt=(
                "Illustration of a ploughed field with a row of red and white warning stakes "
                "along its edge."
            ),
            lead_image_caption="Fields that have not been surveyed stay marked and unworked.",
            lead_image_credit=CREDIT,
        ),
    ),
    (
        7.5,
        dict(
            slug="school-timetable-air-raid-alerts",
            title="Lessons in shorter blocks: how one school plans its day around air-raid alerts",
            summary=(
                "At a secondary school in Horodyshche the timetable is rewritten every term to "
                "fit the shelter. Teachers, parents and pupils explain how it works, and what "
                "it costs."
            ),
            body_source=_SCHOOL,
            author_name="Oksana Pylypenko",
            editor_name="Marta Hnatiuk",
            tags=("Education", "Safety", "Shelters", "Regions"),
            lead_image_url="/static/demo/school-shelter.svg",
            lead_image_alt=(
                "Cross-section illustration of a school building with classrooms above and a "
                "lit basement shelter below ground."
            ),
            lead_image_caption="Half of the pupils fit into the basement shelter at once.",
            lead_image_credit=CREDIT,
        ),
    ),
    (
        10,
        dict(
            slug="lantern-theatre-tours-shelters",
            title="Curtain up, two floors down: a small theatre takes its plays to shelters",
            summary=(
                "With its own hall closed for repairs, a regional theatre company has spent the "
                "season performing in basements and school shelters. Audiences have followed."
            ),
            body_source=_THEATRE,
            author_name="Taras Melnyk",
            editor_name="Denys Orlenko",
            tags=("Culture", "Shelters", "Regions"),
            lead_image_url="/static/demo/shelter-theatre.svg",
            lead_image_alt=(
                "Illustration of a vaulted basement with red curtains, a beam of light and a "
                "small carpet stage in front of rows of seats."
            ),
            lead_image_caption="A carpet, a door frame and two battery lamps make the stage.",
            lead_image_credit=CREDIT,
        ),
    ),
    (
        14,
        dict(
            slug="how-we-decide-what-to-cover",
            title="How our newsroom decides what to cover, and what patrons' votes do",
            summary=(
                "Patrons vote on topics for future reporting. Here is how that vote works, "
                "what it can change, and what it can never buy."
            ),
            body_source=_NEWSROOM,
            author_name="Marta Hnatiuk",
            editor_name="Denys Orlenko",
            tags=("Our newsroom", "Patrons"),
            lead_image_url="/static/demo/newsroom-topics.svg",
            lead_image_alt=(
                "Abstract illustration of cards on a board, some marked with blue and yellow "
                "dots, beside a column of stacked papers."
            ),
            lead_image_caption="Patrons back topics; editors still decide what is published.",
            lead_image_credit=CREDIT,
        ),
    ),
    (
        20,
        dict(
            slug="how-we-correct-mistakes",
            title="When we get it wrong: our corrections policy",
            summary=(
                "Every article has a way to report an error. What happens after you press "
                "Ctrl + Enter, who decides, and how corrections are shown."
            ),
            body_source=_CORRECTIONS,
            author_name="Denys Orlenko",
            editor_name="Marta Hnatiuk",
            tags=("Our newsroom", "Corrections"),
            lead_image_url="/static/demo/corrections.svg",
            lead_image_alt=(
                "Illustration of a printed page with one highlighted line and a pencil lying "
                "across it."
            ),
            lead_image_caption="Corrections are noted at the end of the article, with a date.",
            lead_image_credit=CREDIT,
        ),
    ),
]

ROUND = {
    "title": "What should we look into this winter?",
    "introduction": (
        "Patrons can back up to three of the topics below. The results help our editors decide "
        "which reporting gets time and money first, and we publish them in full when the round "
        "closes. Votes guide an independent newsroom; they do not buy coverage. No vote, pledge "
        "or payment decides what a story concludes, and editors still decide what is published."
    ),
}

TOPICS = [
    (
        "Who fixes the boilers: heating in apartment blocks",
        "Many blocks depend on ageing district boiler houses. We would follow the repairs, the "
        "contracts and who pays for them, building by building, through one winter.",
    ),
    (
        "Rebuilding schools: where the money goes",
        "Shelters, windows, roofs: we would trace the funding for school repairs in three "
        "districts, from the budget line to the building site.",
    ),
    (
        "Mental health care outside the big cities",
        "Who a teacher, a farmer or a returning soldier in a small town can actually see for "
        "help, how long they wait, and what it costs them.",
    ),
    (
        "Land waiting for a survey",
        "Farms that cannot work their fields until a survey is done: how the queue is set, "
        "how long it is, and what owners live on in the meantime.",
    ),
    (
        "Coming home to a damaged town",
        "Families returning to towns near the front line: housing, compensation, schools and "
        "the services that are, or are not, there when they arrive.",
    ),
    (
        "Local budgets, line by line",
        "How the budgets of three towns we already cover changed since 2022, explained line by "
        "line, with the officials who decide them.",
    ),
]
