-- Searches: the top queries of the period, their zero-result share, click-through and how
-- often the session went on to buy.
with searched as (
    select se.query, se.results_count, se.session_id,
           exists (select 1 from analytics.search_results sr
                   where sr.search_id = se.id and sr.clicked) as clicked,
           exists (select 1 from analytics.funnel_events f
                   where f.session_id = se.session_id and f.step = 'purchase') as purchased
    from analytics.searches se
    where se.searched_at >= :period_start and se.searched_at < :period_end
)
select
    lower(s.query) as query,
    count(*) as searches,
    round(count(*) filter (where s.results_count = 0)::numeric / count(*), 4)
        as zero_result_share,
    round(count(*) filter (where s.clicked)::numeric / count(*), 4) as click_through,
    round(count(*) filter (where s.purchased)::numeric / count(*), 4) as search_to_purchase,
    round((count(*)::numeric / sum(count(*)) over ()), 4) as share_of_searches
from searched s
group by lower(s.query)
order by searches desc
limit :top
