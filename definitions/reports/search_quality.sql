-- Searches: the top queries of the period, their zero-result share, click-through and how
-- often the session converted (a 'purchase' funnel event).
with searched as (
    select lower(se.query) as query, se.results_count,
           exists (select 1 from analytics.search_results sr
                   where sr.search_id = se.id and sr.clicked) as clicked,
           coalesce(ss.purchase, false) as purchased
    from analytics.searches se
    left join session_steps ss on ss.session_id = se.session_id
    where se.searched_at >= :period_start and se.searched_at < :period_end
)
select
    s.query,
    count(*) as searches,
    round(count(*) filter (where s.results_count = 0)::numeric / count(*), 4)
        as zero_result_share,
    round(count(*) filter (where s.clicked)::numeric / count(*), 4) as click_through,
    round(count(*) filter (where s.purchased)::numeric / count(*), 4) as search_to_purchase,
    round((count(*)::numeric / sum(count(*)) over ()), 4) as share_of_searches
from searched s
group by s.query
order by searches desc, s.query collate "C"
limit :top
