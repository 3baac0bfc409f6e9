-- What the AI layer learned about each deployment by talking to it: which ways of asking for
-- structured output the server rejects, which parameter caps the output, how many tokens its
-- chat template adds. Learned once by any worker, read by all (one JSON value per fact).
CREATE TABLE deployment_facts (
    deployment TEXT NOT NULL,
    fact TEXT NOT NULL,
    value TEXT NOT NULL,
    learned_at $real NOT NULL,
    PRIMARY KEY (deployment, fact)
);
