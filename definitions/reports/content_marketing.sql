-- Content marketing: article engagement and time on page, click-through to the catalog, top
-- topics and authors, and sales influenced (an order by the reader within 7 days of a click).
with views as (
    select v.id, v.article_id, v.seconds_on_page, s.account_id
    from content.article_views v
    join analytics.sessions s on s.id = v.session_id
    where v.viewed_at >= :period_start and v.viewed_at < :period_end
),
clicks as (
    select c.id, c.article_view_id, c.clicked_at, vw.account_id, vw.article_id
    from content.article_clicks c
    join views vw on vw.id = c.article_view_id
),
influenced as (
    select cl.article_id, count(distinct o.id) as orders, coalesce(sum(o.total), 0) as revenue
    from clicks cl
    join orders.orders o on o.account_id = cl.account_id
        and o.placed_at > cl.clicked_at and o.placed_at <= cl.clicked_at + interval '7 days'
    group by cl.article_id
),
per_article as (
    select a.id, a.author_id,
           count(vw.id) as views,
           avg(vw.seconds_on_page) as avg_seconds,
           (select count(*) from clicks cl where cl.article_id = a.id) as clicks
    from content.articles a
    join views vw on vw.article_id = a.id
    group by a.id, a.author_id
)
select
    t.name as topic,
    au.display_name as author,
    count(distinct pa.id) as articles,
    sum(pa.views) as views,
    round(avg(pa.avg_seconds)::numeric, 1) as avg_seconds_on_page,
    sum(pa.clicks) as clicks_to_catalog,
    round(sum(pa.clicks)::numeric / nullif(sum(pa.views), 0), 4) as click_through,
    coalesce(sum(inf.orders), 0) as influenced_orders,
    coalesce(sum(inf.revenue), 0) as influenced_revenue
from per_article pa
join content.authors au on au.id = pa.author_id
join content.article_topics at2 on at2.article_id = pa.id
join content.topics t on t.id = at2.topic_id
left join influenced inf on inf.article_id = pa.id
group by t.name, au.display_name
order by influenced_revenue desc, views desc
