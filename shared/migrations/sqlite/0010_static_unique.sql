-- A static address belongs to one subscriber: two holding it would both be given it and
-- neither would route. If this fails on an existing database, the error names the address
-- held twice; give one of the subscribers another address (or none) and start again.
DROP INDEX subscribers_static_ipv4;
CREATE UNIQUE INDEX subscribers_static_ipv4 ON subscribers (static_ipv4)
    WHERE static_ipv4 IS NOT NULL;
