"""Topics and fillers for the rubric set's templates (see `rubric_gen`)."""

from __future__ import annotations

COUNTRIES = (
    "Australia", "Canada", "Kenya", "Peru", "Norway", "Vietnam", "Morocco", "Chile",
    "Portugal", "Mongolia", "New Zealand", "Ghana", "Austria", "Thailand", "Uruguay",
    "Finland", "Egypt", "Nepal", "Ireland", "Colombia",
)  # fmt: skip
LANGUAGES = (
    "French", "Spanish", "German", "Italian", "Japanese", "Portuguese", "Dutch",
    "Swedish", "Korean", "Polish", "Turkish", "Greek",
)  # fmt: skip
PHRASES = (
    "Good morning, how are you?", "thank you very much", "Where is the train station?",
    "I would like a coffee, please", "See you tomorrow", "The meeting is cancelled",
    "Happy birthday", "How much does this cost?", "I am learning to cook",
    "The invoice is attached", "Please close the door", "It is raining today",
)  # fmt: skip
UNITS = (
    ("kilometres", "miles"), ("miles", "kilometres"), ("degrees Fahrenheit", "Celsius"),
    ("degrees Celsius", "Fahrenheit"), ("pounds", "kilograms"), ("kilograms", "pounds"),
    ("litres", "gallons"), ("inches", "centimetres"), ("hours", "minutes"),
    ("megabytes", "kilobytes"), ("feet", "metres"), ("ounces", "grams"),
)  # fmt: skip
JSON_SNIPPETS = (
    '{"name":"John","age":30}', '{"id":7,"tags":["a","b"],"active":true}',
    '{"city":"Oslo","temp":-3,"unit":"C"}', '[{"sku":"A1","qty":2},{"sku":"B9","qty":1}]',
    '{"user":{"first":"Ana","last":"Lima"},"roles":["admin"]}', '{"ok":false,"error":"timeout"}',
    '{"version":"1.2.0","deps":{"numpy":"2.0"}}', '{"lat":48.85,"lon":2.35}',
)  # fmt: skip
REVIEWS = (
    "The battery died after two days.", "Absolutely love it, works perfectly!",
    "It arrived on time and does the job.", "Terrible customer service, never again.",
    "The fit is great but the colour faded quickly.", "Best purchase I made this year.",
    "Broke the first time I used it.", "Nothing special, but fine for the price.",
    "The app keeps crashing on my phone.", "Delivery was fast and the packaging was neat.",
)  # fmt: skip
TICKETS = (
    "I was charged twice this month.", "The export button does nothing in Firefox.",
    "Could you add a dark mode?", "How do I change the email on my account?",
    "My parcel shows delivered but never arrived.", "The page shows error 500 after login.",
    "Please cancel my subscription.", "Can I pay by bank transfer?",
)  # fmt: skip
TYPO_SENTENCES = (
    "Teh quick brwon fox jumpd over the lazy dog.", "I recieved you're mesage yesturday.",
    "Their going to the libary tomorow.", "The comittee will definately decide soon.",
    "Plese send me the adress of the resturant.", "It was a beutiful and sunny afternon.",
    "We shoud of left erlier.", "The goverment anounced new rules.",
)  # fmt: skip
ELEMENTS = (
    "gold", "silver", "iron", "sodium", "potassium", "tungsten", "lead", "mercury",
    "helium", "copper", "tin", "neon",
)  # fmt: skip
BOOKS = (
    "Pride and Prejudice", "One Hundred Years of Solitude", "The Odyssey", "Moby-Dick",
    "Things Fall Apart", "Don Quixote", "War and Peace", "The Tale of Genji",
    "Frankenstein", "Beloved", "The Trial", "Middlemarch",
)  # fmt: skip
HISTORY_EVENTS = (
    "the fall of the Berlin Wall", "the first Moon landing", "the French Revolution",
    "the signing of the Magna Carta", "the 2008 financial crisis", "the Meiji Restoration",
    "the end of World War I", "the invention of the printing press",
    "the collapse of the Western Roman Empire", "the founding of the United Nations",
    "the Industrial Revolution", "the Cuban Missile Crisis",
)  # fmt: skip
ACRONYMS = (
    "NASA", "HTTP", "GDP", "UNESCO", "CPU", "DNA", "RSVP", "SCUBA", "JSON", "OECD",
    "LASER", "FAQ", "ETA", "ASAP",
)  # fmt: skip
WORDS = (
    "happy", "quick", "ancient", "generous", "fragile", "brave", "bright", "quiet",
    "rough", "honest", "narrow", "eager", "humble", "vivid",
)  # fmt: skip
PROGRAMMING_LANGUAGES = (
    "Python", "JavaScript", "TypeScript", "Go", "Rust", "Java", "C#", "Kotlin", "Ruby",
)  # fmt: skip
CODE_TASKS = (
    "merges two sorted lists into one sorted list", "checks whether a string is a palindrome",
    "returns the n-th Fibonacci number iteratively",
    "parses a log line into timestamp, level and message",
    "removes duplicates from a list while keeping order", "debounces another function",
    "counts word frequencies in a text", "validates a credit card number with the Luhn check",
    "flattens a nested list", "converts a Roman numeral to an integer",
    "groups a list of records by a key", "reverses a linked list",
    "returns the intersection of two arrays", "retries an HTTP call with exponential backoff",
    "reads a CSV file and returns the average of one column", "chunks a list into batches of n",
)  # fmt: skip
CONCEPTS = (
    "a hash map handling collisions", "recursion", "HTTPS encryption in transit",
    "garbage collection in Java", "database indexing", "Python decorators",
    "the JavaScript event loop", "gradient descent", "DNS resolution",
    "OAuth 2.0 authorization codes",
    "a REST API", "Git rebasing", "compound interest", "photosynthesis", "inflation",
    "supply and demand", "vaccines training the immune system", "the greenhouse effect",
)  # fmt: skip
CONCEPT_PAIRS = (
    ("TCP", "UDP"), ("a process", "a thread"), ("SQL", "NoSQL databases"),
    ("lists", "tuples in Python"), ("merge", "rebase in Git"), ("weather", "climate"),
    ("stocks", "bonds"), ("mitosis", "meiosis"), ("REST", "GraphQL"),
    ("let", "const in JavaScript"),
    ("a virus", "a bacterium"), ("supervised", "unsupervised learning"),
)  # fmt: skip
AUDIENCES = (
    "a junior developer", "a ten-year-old", "a non-technical manager", "a first-year student",
    "my grandmother", "a new team member",
)  # fmt: skip
PARAGRAPHS = (
    "Remote work has grown steadily since 2020. Companies report lower office costs and "
    "wider hiring pools, while employees value flexibility. Critics point to weaker "
    "mentoring for juniors and blurred boundaries between work and home.",
    "The city council approved a new bike-lane network on Tuesday. Supporters say it will "
    "cut traffic and emissions; local shop owners worry about losing parking spaces. "
    "Construction begins in spring and should take eighteen months.",
    "Our quarterly revenue rose 12% thanks to the new subscription tier, but churn "
    "increased among small customers. Support tickets doubled after the pricing change, "
    "mostly about billing confusion.",
    "Coral reefs cover less than one percent of the ocean floor yet support about a "
    "quarter of marine species. Rising sea temperatures cause bleaching, and repeated "
    "events leave reefs too little time to recover.",
    "The release was delayed by two weeks because the payment provider changed its API. "
    "The team added integration tests and a feature flag so the next change can be "
    "rolled out gradually.",
)  # fmt: skip
DEBATES = (
    "a four-day work week", "nuclear power", "school uniforms", "rent control",
    "banning phones in classrooms", "universal basic income", "remote work for small teams",
)  # fmt: skip
EMAIL_SUBJECTS = (
    "reviewing my pull request by Friday", "rescheduling our meeting to next week",
    "a late invoice payment", "a broken heater in the flat", "my request for a day off",
    "the new onboarding checklist", "following up after an interview",
)  # fmt: skip
BUGGY_SNIPPETS = (
    "for i in range(10): print(i / (i - 5))",
    "def avg(xs):\n    return sum(xs) / len(xs)\nprint(avg([]))",
    "items = [1, 2, 3]\nfor i in range(len(items) + 1):\n    print(items[i])",
    "const total = prices.reduce((a, b) => a + b);",
    "SELECT name, COUNT(*) FROM users GROUP BY city;",
    "def add_item(item, bucket=[]):\n    bucket.append(item)\n    return bucket",
    "if (user.age = 18) { allow(); }",
    "with open('data.txt') as f:\n    lines = f.read\nprint(len(lines))",
)  # fmt: skip
SQL_TASKS = (
    "returns the top 5 customers by total order value",
    "finds users who signed up in the last 30 days but never ordered",
    "counts orders per month for 2024", "finds duplicate email addresses",
    "returns each department's highest-paid employee",
    "computes a 7-day moving average of daily sales",
)  # fmt: skip
DATASETS = (
    "Jan 120, Feb 135, Mar 150, Apr 149, May 170, Jun 210",
    "Q1 $40k, Q2 $38k, Q3 $52k, Q4 $61k",
    "week 1: 300 signups, week 2: 280, week 3: 410, week 4: 395",
    "Mon 12, Tue 15, Wed 14, Thu 30, Fri 32, Sat 8, Sun 5",
)  # fmt: skip
ARCHITECTURES = (
    "three API nodes, one Postgres primary, Redis for sessions, and a nightly batch that "
    "rebuilds the search index",
    "a Postgres primary with two replicas, Kafka between services, and a Redis cache in "
    "front of the API",
    "a single Postgres primary, five stateless API nodes, Redis as cache and queue, and a "
    "nightly batch job that rebuilds search indexes",
    "forty microservices sharing one MySQL database, synchronous REST calls between them, "
    "and a shared Redis lock service",
    "an event-sourced order system on Kafka with three consumer groups and a read model in "
    "Elasticsearch",
    "two regions active-passive with asynchronous Postgres replication and DNS failover",
)  # fmt: skip
SYSTEMS_AT_SCALE = (
    "real-time fraud detection on 50,000 card transactions per second with sub-100 ms decisions",
    "a global leaderboard for a game with ten million concurrent players",
    "a collaborative document editor that supports offline edits",
    "a multi-region active-active payments platform with data-residency rules",
    "a URL shortener serving a billion redirects a day",
    "a ride-sharing dispatch service across 300 cities",
    "a metrics pipeline ingesting two million events per second",
    "a video transcoding platform with strict cost limits",
)  # fmt: skip
THEOREMS = (
    "there are infinitely many primes of the form 4k+3",
    "the square root of 2 is irrational",
    "every connected graph with n vertices and n-1 edges is a tree",
    "a continuous function on a closed interval attains its maximum",
    "the halting problem is undecidable",
    "every finite integral domain is a field",
    "the sum of the reciprocals of the primes diverges",
    "any comparison-based sort needs Omega(n log n) comparisons in the worst case",
)  # fmt: skip
RESEARCH_QUESTIONS = (
    "remote work and productivity over the last decade",
    "the effectiveness of carbon pricing across regions",
    "minimum wage increases and employment",
    "screen time and adolescent mental health",
    "microplastics and human health",
    "class size and student outcomes",
    "intermittent fasting and long-term weight loss",
)  # fmt: skip
STRATEGY_CASES = (
    "a mid-size SaaS company entering the European market",
    "a regional bank moving its core ledger to the cloud",
    "a hardware start-up facing a new low-cost competitor",
    "a university shifting a third of its courses online",
    "a family-owned brewery expanding into exports",
    "a hospital network adopting AI triage",
)  # fmt: skip
MIGRATIONS = (
    "a 5 TB Postgres database under heavy write load to a sharded cluster",
    "a monolithic ERP used by 30 factories to modular services",
    "on-premise Oracle to a managed cloud database",
    "a REST API with 200 clients to a versioned GraphQL gateway",
    "a single-region Kubernetes cluster to three availability zones",
)  # fmt: skip
CREATIVE_PREMISES = (
    "a lighthouse keeper who receives letters from the future",
    "the last bookshop in a city that has banned paper",
    "a translator who slowly forgets her native language",
    "two rival chess players stranded in a snowed-in station",
    "a robot gardener tending a garden after its owners have gone",
    "a family reunion told from the point of view of the house",
    "an astronaut who hears music in the static",
)  # fmt: skip
POLICIES = (
    "a universal basic income funded by a carbon tax",
    "banning non-compete clauses for all workers",
    "open-sourcing frontier AI models",
    "congestion pricing in a city centre",
    "mandatory four-day work weeks in the public sector",
    "a global minimum corporate tax",
)  # fmt: skip
HARD_ALGORITHMS = (
    "a lock-free multi-producer multi-consumer queue",
    "exactly-once processing in a stream processor with failures",
    "consistent hashing with bounded loads",
    "a CRDT for collaborative text editing",
    "the shortest path with time-dependent edge weights",
    "a distributed snapshot of a running system",
)  # fmt: skip
