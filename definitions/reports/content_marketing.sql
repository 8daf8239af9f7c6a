-- Content marketing: article engagement and time on page, click-through to the catalog, top
-- topics and authors, and sales influenced (a purchase by the reader within 7 days of a click).
with views as (
    select v.id, v.article_id, v.seconds_on_page, s.account_id, a.author_id, at2.topic_id
    from content.article_views v
    join analytics.sessions s on s.id = v.session_id
    join content.articles a on a.id = v.article_id
    join content.article_topics at2 on at2.article_id = v.article_id
    where v.viewed_at >= :period_start and v.viewed_at < :period_end
),
clicked as (
    select vw.topic_id, vw.author_id, count(*) as clicks
    from content.article_clicks c
    join views vw on vw.id = c.article_view_id
    group by vw.topic_id, vw.author_id
),
influenced as (
    -- Each purchase once per row, however many of the row's clicks led to it.
    select distinct vw.topic_id, vw.author_id, p.order_id, p.net_revenue
    from content.article_clicks c
    join views vw on vw.id = c.article_view_id
    join purchases p on p.account_id = vw.account_id
        and p.placed_at > c.clicked_at and p.placed_at <= c.clicked_at + interval '168 hours'
),
sales as (
    select i.topic_id, i.author_id, count(*) as orders, sum(i.net_revenue) as revenue
    from influenced i
    group by i.topic_id, i.author_id
),
engagement as (
    select vw.topic_id, vw.author_id, count(distinct vw.article_id) as articles,
           count(*) as views, avg(vw.seconds_on_page) as avg_seconds
    from views vw
    group by vw.topic_id, vw.author_id
)
select
    t.name as topic,
    au.display_name as author,
    e.articles,
    e.views,
    round(e.avg_seconds::numeric, 1) as avg_seconds_on_page,
    coalesce(cl.clicks, 0) as clicks_to_catalog,
    round(coalesce(cl.clicks, 0)::numeric / e.views, 4) as click_through,
    coalesce(sa.orders, 0) as influenced_orders,
    coalesce(sa.revenue, 0) as influenced_revenue
from engagement e
join content.topics t on t.id = e.topic_id
join content.authors au on au.id = e.author_id
left join clicked cl on cl.topic_id = e.topic_id and cl.author_id = e.author_id
left join sales sa on sa.topic_id = e.topic_id and sa.author_id = e.author_id
order by influenced_revenue desc, views desc, t.name collate "C", au.display_name collate "C"
