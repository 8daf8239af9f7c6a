select s.id as session_id, s.account_id, s.started_at,
       exists (select 1 from analytics.funnel_events f
               where f.session_id = s.id and f.step = 'visit') as visit,
       exists (select 1 from analytics.funnel_events f
               where f.session_id = s.id and f.step = 'product_view') as product_view,
       exists (select 1 from analytics.funnel_events f
               where f.session_id = s.id and f.step = 'add_to_cart') as add_to_cart,
       exists (select 1 from analytics.funnel_events f
               where f.session_id = s.id and f.step = 'checkout') as checkout,
       exists (select 1 from analytics.funnel_events f
               where f.session_id = s.id and f.step = 'payment') as payment,
       exists (select 1 from analytics.funnel_events f
               where f.session_id = s.id and f.step = 'purchase') as purchase
from analytics.sessions s
