-- Message templates ("patterns"), the SQL twin of logmon's Rust extractor (src/pattern/scan.rs):
-- the same rules, so a row written with plain SQL gets the pattern the collector would give it.
-- tests/api/patterns.rs proves both equal on the labelled corpus (tests/corpus/) and on thousands
-- of generated and mutated lines: change both together. The rules, in short (scan.rs says more):
--   pass 1: whitespace runs become one space; quoted values ("...", '...') become "<*>" (an HTTP
--           request line keeps its method: "GET <*>"), except the message's own text (a quote at
--           the very start, or after msg=, message=, event=);
--   pass 2: each word is split into leading brackets, core and trailing punctuation; `::`, empty
--           brackets, name(key=...) arguments, key=value values, Label:value values, and cores
--           with a digit, `/`, `\`, an inner `@`, a lower-case dotted name, a month or weekday, a
--           name after a key word (user, host, job, ...) or between `for` and `from`, or a unit
--           after a number, become <*>; a run of <*> words is one <*>.
-- Character classes are spelled out (no ranges, no [[:alpha:]]) and lower-casing is lower(x COLLATE "C")
-- (ASCII only: no Turkish dotless i, no Kelvin sign), so that no locale can change a result.

-- The word lists of src/pattern/scan.rs, lower case (matched after ASCII lower-casing).
CREATE OR REPLACE FUNCTION log_template_words(list text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE list
  WHEN 'keys' THEN '{user,username,login,host,hostname,domain,job,container,pod,topic,queue,table,database,index,bucket,image,file,device}'::text[]
  WHEN 'stop' THEN '{a,about,after,again,all,already,also,an,and,any,are,as,at,be,been,before,being,but,by,can,cannot,could,did,do,does,for,from,had,has,have,if,in,into,is,it,its,just,may,might,must,no,none,not,now,of,off,on,only,onto,or,out,over,so,some,still,than,that,the,then,there,this,to,under,via,was,were,when,which,while,who,will,with,would,should,"null",nil,true,false,unknown,accepted,added,authenticated,changed,closed,completed,connected,created,deleted,denied,disabled,disconnected,done,down,enabled,exists,exited,expired,failed,failing,finished,found,killed,loaded,locked,logged,missing,ok,opened,pending,queued,ready,received,registered,rejected,removed,restarted,running,saved,scheduled,sent,skipped,started,starting,stopped,stopping,succeeded,successfully,terminated,timed,timeout,unavailable,unreachable,up,updated}'::text[]
  WHEN 'units' THEN '{b,kb,mb,gb,tb,pb,kib,mib,gib,tib,ns,us,ms,s,sec,secs,min,mins,h,hr,hrs}'::text[]
  WHEN 'dates' THEN '{jan,feb,mar,apr,may,jun,jul,aug,sep,sept,oct,nov,dec,january,february,march,april,june,july,august,september,october,november,december,mon,tue,wed,thu,fri,sat,sun,monday,tuesday,wednesday,thursday,friday,saturday,sunday}'::text[]
  WHEN 'text_keys' THEN '{msg,message,event}'::text[]
END;

COMMENT ON FUNCTION log_template_words(text) IS
  'Internal to log_template(): its word lists (keys, stop, units, dates, text_keys), the same as src/pattern/scan.rs.';

-- A core that is variable by itself: a digit, `/`, `\`, an `@` after its start, 8+ hexadecimal
-- letters, a lower-case dotted name, or a capitalised month or weekday.
-- Not STRICT: a STRICT SQL function with a CASE body is never inlined, and inlining makes it ~10x
-- cheaper.
CREATE OR REPLACE FUNCTION log_template_is_variable(core text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
  WHEN core ~ '[0123456789/\\]|.@|^[abcdefABCDEF]{8,}$' THEN true
  -- (a date word has no dot, so the two tests below never both apply)
  WHEN strpos(core, '.') > 0 THEN core ~ '^[abcdefghijklmnopqrstuvwxyz_-]+(\.[abcdefghijklmnopqrstuvwxyz_-]+)+$'
  WHEN length(core) BETWEEN 3 AND 9 AND ascii(core) BETWEEN 65 AND 90
    THEN lower(core COLLATE "C") = ANY (log_template_words('dates'))
  ELSE false
END;

COMMENT ON FUNCTION log_template_is_variable(text) IS
  'Internal to log_template(): whether a word''s core is variable by itself (a digit, /, \, an inner @, a lower-case dotted name, a capitalised month or weekday).';

-- One word of pass 2 (rules 1-6 of scan.rs). `a` and `b` cut the word into leading brackets
-- (1..a), core (a+1..b) and trailing punctuation (b+1..); NULL means "compute them". Recursive for
-- name(args) and text-key values, at most 3 levels deep, like the Rust code.
CREATE OR REPLACE FUNCTION log_template_word(w text, a int, b int, after_key boolean, after_number boolean, depth int)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  core text;
  lc text;
  n int;
  pos int;
  closed int := 0;
  c text;
BEGIN
  IF a IS NULL THEN
    a := length(substring(w FROM '^[(\[{<"''`]*'));
    b := length(w);
    WHILE b > a LOOP
      c := substr(w, b, 1);
      IF strpos(')]}>"''`', c) > 0 AND closed < a THEN
        closed := closed + 1;
      ELSIF strpos(',;:.!?', c) = 0 THEN
        EXIT;
      END IF;
      b := b - 1;
    END LOOP;
  END IF;
  n := b - a;
  IF n = 0 THEN
    IF w = '::' THEN
      RETURN '<*>';                                   -- the IPv6 any-address
    ELSIF a > 0 AND b < length(w) AND strpos(')]}>"''`', substr(w, b + 1, 1)) > 0 THEN
      RETURN left(w, a) || '<*>' || substr(w, b + 1); -- (), []: an empty value
    END IF;
    RETURN w;
  END IF;
  core := substr(w, a + 1, n);

  -- 3. name(key=value...) or name('literal'): the name and the bracketed rest judged apart.
  pos := strpos(core, '(');
  IF depth < 3 AND pos > 1 AND (strpos(substr(core, pos + 1), '=') > 0 OR substr(core, pos + 1, 1) IN ('"', '''')) THEN
    c := left(core, pos - 1);
    RETURN left(w, a)
      || CASE WHEN log_template_is_variable(c)
                OR (after_key AND NOT lower(c COLLATE "C") = ANY (log_template_words('stop')))
              THEN '<*>' ELSE c END
      || log_template_word(substr(w, a + pos), NULL, NULL, false, false, depth + 1);
  END IF;

  -- 4. key=value: the key stays (no digit, / or \ in it: /feed/a?page=2 is a path); a text key's
  --    value is judged as a word.
  pos := strpos(core, '=');
  IF pos > 1 AND left(core, pos - 1) !~ '[0123456789/\\]' THEN
    IF depth < 3 AND lower(left(core, pos - 1) COLLATE "C") = ANY (log_template_words('text_keys')) THEN
      RETURN left(w, a + pos) || log_template_word(substr(w, a + pos + 1), NULL, NULL, false, false, depth + 1);
    END IF;
    RETURN left(w, a + pos) || '<*>' || substr(w, b + 1);
  END IF;

  -- 5. Label:value, a code label (letters, a capital) before a variable value, not a path (C:\).
  pos := strpos(core, ':');
  IF pos > 1 AND pos < n
     AND left(core, pos - 1) ~ '^[ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_]+$'
     AND left(core, pos - 1) ~ '[ABCDEFGHIJKLMNOPQRSTUVWXYZ]'
     AND substr(core, pos + 1, 1) NOT IN ('/', '\')
     AND log_template_is_variable(substr(core, pos + 1)) THEN
    RETURN left(w, a + pos) || '<*>' || substr(w, b + 1);
  END IF;

  -- 6. A variable core swallows the leading brackets the suffix does not close.
  lc := lower(core COLLATE "C");
  IF log_template_is_variable(core)
     OR (after_key AND NOT lc = ANY (log_template_words('stop')))
     OR (after_number AND rtrim(lc, ')]}>"''`') = ANY (log_template_words('units'))) THEN
    closed := length(translate(substr(w, b + 1), ',;:.!?', ''));
    RETURN substr(w, a - closed + 1, closed) || '<*>' || substr(w, b + 1);
  END IF;
  RETURN w;
END
$$;

COMMENT ON FUNCTION log_template_word(text, int, int, boolean, boolean, int) IS
  'Internal to log_template(): one word of pass 2 (rules 1-6 of src/pattern/scan.rs). a/b cut the word into leading brackets, core and trailing punctuation (NULL: computed).';

CREATE OR REPLACE FUNCTION log_template(message text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = public, pg_temp AS $$
DECLARE
  m text := left(message, 4096);
  out text := '';
  pos int := 1;           -- pass 1: the first character of m not yet copied to out
  i int := 1;             -- pass 1: where to look for the next quote
  j int;
  q text;
  body text;
  words text[];
  w text;
  lw text;
  lc text;
  r text;
  k int;
  a int;
  b int;
  closed int;
  c text;
  key1 boolean := false;  -- the word before is a key word (user, host, ...)
  key2 boolean := false;  -- ... and the one before that
  after_for boolean := false;
  name_pos boolean;
  last_wc boolean := false;
BEGIN
  -- Pass 1: whitespace (the regex only when needed: it is the costliest step of short lines) ...
  IF strpos(m, '  ') > 0 OR strpos(m, chr(9)) > 0 OR strpos(m, chr(10)) > 0 OR strpos(m, chr(11)) > 0
     OR strpos(m, chr(12)) > 0 OR strpos(m, chr(13)) > 0 OR left(m, 1) = ' ' OR right(m, 1) = ' ' THEN
    m := btrim(regexp_replace(m, '[ \t\n\r\v\f]+', ' ', 'g'), ' ');
  END IF;
  -- ... and quoted values. A candidate quote follows a space, an opening bracket, =, : or ,.
  IF strpos(m, '"') > 0 OR strpos(m, '''') > 0 THEN
    LOOP
      j := regexp_instr(m, '[ (\[{<=:,]["'']', i);
      EXIT WHEN j = 0;
      i := j + 1;                                     -- the quote
      q := substr(m, i, 1);
      IF substr(m, j, 1) = '='
         -- The key run before '=' (the last 8 characters suffice: text keys are shorter).
         AND lower(substring(right(left(m, j - 1), 8) FROM '[0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_.-]*$') COLLATE "C") = ANY (log_template_words('text_keys')) THEN
        i := i + 1;                                   -- msg="...": the message's text stays
        CONTINUE;
      END IF;
      body := substring(substr(m, i + 1) FROM CASE q WHEN '"' THEN '^((?:[^"\\]|\\.)*)"' ELSE '^((?:[^''\\]|\\.)*)''' END);
      -- The closing quote must be followed by the end (strpos finds '' at 1), a space or closing punctuation.
      IF body IS NOT NULL AND strpos(' ,;:.!?)]}>', substr(m, i + length(body) + 2, 1)) > 0 THEN
        out := out || substr(m, pos, i - pos) || q
            || coalesce(substring(body FROM '^(GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH) ') || ' ', '')
            || '<*>' || q;
        i := i + length(body) + 2;
        pos := i;
      ELSE
        i := i + 1;
      END IF;
    END LOOP;
    m := out || substr(m, pos);
    out := '';
  END IF;

  -- Pass 2: words.
  words := string_to_array(m, ' ');
  k := 0;
  FOREACH w IN ARRAY words LOOP
    k := k + 1;
    lw := lower(w COLLATE "C");
    -- A name follows a key word not itself a name (user bob; user user bob), or sits between
    -- `for` and `from` (words[k + 1] only then: indexing a text[] walks it).
    name_pos := (key1 AND NOT key2) OR (after_for AND lower(coalesce(words[k + 1], '') COLLATE "C") = 'from');
    c := rtrim(w, ',;:.!?');
    IF strpos('([{<"''`', left(w, 1)) = 0 AND c <> ''
       AND strpos(c, '(') = 0 AND strpos(c, '=') = 0 AND strpos(c, ':') = 0 THEN
      -- A simple word (most words): no leading bracket, so its core is the word without its
      -- trailing punctuation, and with no ( = : inside only rule 6 can apply.
      a := 0;
      b := length(c);
      lc := lower(c COLLATE "C");
      r := CASE WHEN log_template_is_variable(c)
                  OR (name_pos AND NOT lc = ANY (log_template_words('stop')))
                  OR (last_wc AND rtrim(lc, ')]}>"''`') = ANY (log_template_words('units')))
           THEN '<*>' || substr(w, b + 1) ELSE w END;
    ELSE
      a := length(substring(w FROM '^[(\[{<"''`]*'));
      b := length(w);
      closed := 0;
      WHILE b > a LOOP
        c := substr(w, b, 1);
        IF strpos(')]}>"''`', c) > 0 AND closed < a THEN
          closed := closed + 1;
        ELSIF strpos(',;:.!?', c) = 0 THEN
          EXIT;
        END IF;
        b := b - 1;
      END LOOP;
      r := log_template_word(w, a, b, name_pos, last_wc, 0);
    END IF;
    IF NOT (r = '<*>' AND last_wc) THEN
      out := CASE WHEN out = '' THEN r ELSE out || ' ' || r END;
      last_wc := r = '<*>';
    END IF;
    key2 := key1;
    -- `user.` ends a sentence; `user:` still introduces a name.
    key1 := b > a AND strpos(substr(w, b + 1), '.') = 0
            AND substr(lw, a + 1, b - a) = ANY (log_template_words('keys'));
    after_for := lw = 'for';
  END LOOP;
  RETURN out;
END
$$;

COMMENT ON FUNCTION log_template(text) IS
  'The template of a log message: its variable parts (numbers, ids, addresses, paths, quoted values, key=value values, names after user/host/..., dates) replaced by <*>. The same result as the collector''s Rust extractor (src/pattern/scan.rs); reads the first 4096 characters.';

CREATE OR REPLACE FUNCTION pattern_id(template text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ('x' || left(md5(convert_to(template, 'UTF8')), 16))::bit(64)::bigint;

COMMENT ON FUNCTION pattern_id(text) IS
  'The stable 64-bit id of a template: the first 8 bytes of md5(template as UTF-8), big-endian, signed. The collector computes the same.';

CREATE OR REPLACE FUNCTION log_pattern_id(message text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pattern_id(log_template(message));

COMMENT ON FUNCTION log_pattern_id(text) IS
  'pattern_id(log_template(message)): the pattern of a log message, as the collector stores it.';
